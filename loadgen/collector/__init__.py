"""The embedded OTLP/HTTP collector: receives trace exports, counts and checks their spans, injects faults.

`create_app(config)` is the ASGI app (for in-process tests); `serve(config, ...)` runs it
under uvicorn on 127.0.0.1 until SIGTERM/SIGINT. Figures are read over loopback from
`GET /_collector/stats[?run_id=X]`; `REQUIRED_ATTRIBUTES` is the default attribute set
per LLM-span convention.
"""

from .app import create_app
from .config import CollectorConfig, CollectorFault
from .conventions import REQUIRED_ATTRIBUTES
from .server import serve

__all__ = ["REQUIRED_ATTRIBUTES", "CollectorConfig", "CollectorFault", "create_app", "serve"]
