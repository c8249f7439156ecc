"""Subprocesses: one whose output is read through a pipe, one that writes to our stdout and
stderr itself (below Python: the bytes must come out unchanged)."""

import asyncio
import sys


async def main() -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "print('piped from the child')", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await child.communicate()
    print("read:", out.decode().strip(), "status", child.returncode)
    sys.stdout.flush()
    direct = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; sys.stdout.write('straight to fd 1\\n'); sys.stderr.write('and fd 2\\n')",
    )
    print("direct status", await direct.wait())


asyncio.run(main())
