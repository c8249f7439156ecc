# The notes' two socket clients, as written there, pointed at a local server this example
# starts (the notes' host is on the internet). The server is asyncio and traced; the clients
# are the notes' plain blocking and select() code, each run in a thread:
#
#     loopviz run examples/notes_sockets.py
#
# Watch the server's listening socket and each connection in the select panel.
import asyncio
import logging
import socket
import select


logging.basicConfig(format='%(levelname)s - %(asctime)s: %(message)s', datefmt='%H:%M:%S', level=logging.DEBUG)

def create_blocking(host, ip):
    logging.info('Blocking - creating socket')
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)

    logging.info('Blocking - connecting')
    s.connect((host, ip))

    logging.info('Blocking - connected')
    logging.info('Blocking - sending')

    s.send(b'Hello\r\n')

    logging.info('Blocking - waiting')
    data = s.recv(1024)

    logging.info(f'Blocking - data = {len(data)}')
    logging.info('Blocking - closing')
    s.close()


def create_nonblocking(host, port):
    logging.info('Non Blocking - creating socket')
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)

    logging.info('Non Blocking - connecting')
    result = s.connect_ex((host, port)) #Blocking

    if result != 0:
        logging.info('Non Blocking - failed to connect')
        return

    logging.info('Non Blocking - connected')
    s.setblocking(False)

    input = [s]
    output = [s]

    while input:
        logging.info('Non Blocking - waiting')
        redable, writable, exceptional = select.select(input, output, input, 0.5)

        for s in writable:
            logging.info('Non Blocking - sending')
            data = s.send(b'hello\r\n')
            logging.info(f'Non Blocking - sent: {data}')
            output.remove(s)

        for s in redable:
            logging.info('Non Blocking - reading')
            data = s.recv(1024)
            logging.info(f'Non Blocking - data: {len(data)}')
            logging.info('Non Blocking - closing')
            s.close()
            input.remove(s)
            break

        for s in exceptional:
            logging.info('Non Blocking - error')
            input.remove(s)
            output.remove(s)
            break


# -- the local server (not in the notes): answers each request after a moment, as a web
# server on the internet would.

async def answer(reader, writer):
    await reader.readline()
    await asyncio.sleep(1.0)
    writer.write(b'HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n')
    await writer.drain()
    writer.close()


async def main():
    server = await asyncio.start_server(answer, '127.0.0.1', 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, create_blocking, '127.0.0.1', port)
    await loop.run_in_executor(None, create_nonblocking, '127.0.0.1', port)
    server.close()
    await server.wait_closed()


asyncio.run(main())
