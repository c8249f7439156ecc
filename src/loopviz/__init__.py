"""loopviz: watch a real asyncio event loop at work."""

__version__ = "0.1.0"
