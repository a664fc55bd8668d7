"""Server-rendered pages: the front page with its pledge form, and the thank-you page."""

from .views import bp

__all__ = ["bp"]
