"""No asyncio loop at all."""

print("just a print")
