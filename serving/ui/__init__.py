"""The coder review UI, served by the API app under /ui (plain HTML, CSS and ES modules; no build step)."""

from medcode.serving.ui.routes import router

__all__ = ["router"]
