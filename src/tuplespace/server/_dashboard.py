"""The web dashboard: a static page at ``/`` that speaks the HTTP API in the browser.

The page has no build step: ``index.html``, an ES module and a style sheet from the
``dashboard`` folder beside this file, and the JavaScript binding
(``clients/js/tuplespace.js``, reached through a link in that folder) at
``/js/tuplespace.js``.  None of these routes is in the OpenAPI document, and none
needs a token: the page holds no data, and asks the API for it with the token the
person gives it.  A strict Content-Security-Policy lets the page load nothing but
these files and talk to nothing but this server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response

__all__ = ["install_dashboard"]

DASHBOARD = Path(__file__).with_name("dashboard")

# Each route, the file it serves and its content type.
FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/dashboard/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/dashboard/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    "/js/tuplespace.js": ("tuplespace.js", "text/javascript; charset=utf-8"),
}

HEADERS = {
    "Content-Security-Policy": "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidated on every load (by ETag), so a new version of the server serves
    # its own page at once.
    "Cache-Control": "no-cache",
}


def install_dashboard(app: FastAPI) -> None:
    """Serve the dashboard's files from ``app`` (GET and HEAD, outside the OpenAPI
    document)."""
    for path, (name, media_type) in FILES.items():
        app.add_route(path, _serve(DASHBOARD / name, media_type), methods=["GET"], include_in_schema=False)


def _serve(file: Path, media_type: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if not file.is_file():  # an installation without the JavaScript binding
            raise HTTPException(404, f"{file.name} is not installed")
        return FileResponse(file, media_type=media_type, headers=HEADERS)

    return endpoint
