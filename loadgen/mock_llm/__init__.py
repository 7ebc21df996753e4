"""The embedded mock LLM: OpenAI- and Anthropic-compatible endpoints with seeded latency and faults.

`create_app(config)` is the ASGI app (for in-process tests); `serve(config, ...)` runs it
under uvicorn on 127.0.0.1 until SIGTERM/SIGINT.
"""

from .app import create_app
from .config import FaultSpec, MockConfig
from .server import serve

__all__ = ["FaultSpec", "MockConfig", "create_app", "serve"]
