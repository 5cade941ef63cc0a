"""The HTTP gateway: a thin FastAPI layer over the engine."""
from .app import create_app

__all__ = ["create_app"]
