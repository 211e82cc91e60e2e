"""The server's web pages: the dashboard at ``/``, a static page that speaks the
HTTP API in the browser, and the API's documentation at ``/docs``.

The dashboard has no build step: ``index.html``, two ES modules and a style sheet from
the ``dashboard`` folder beside this file, and the ES modules of the JavaScript binding
(``clients/js/src``, reached through the link ``dashboard/js``) at ``/js/<module>.js``.
``/docs`` is Swagger UI over ``/openapi.json``: its page and start-up script are in
the same folder, and Swagger UI's own files come from the ``fastapi-offline`` package,
so the page needs nothing from elsewhere.  None of these routes is in the OpenAPI
document, and none needs a token: the pages hold no data, and ask the API for it with
the token the person gives them.  A strict
Content-Security-Policy lets each page load nothing but these files and talk to
nothing but this server.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, Response

__all__ = ["install_dashboard"]

DASHBOARD = Path(__file__).with_name("dashboard")
SWAGGER_UI = Path(str(importlib.resources.files("fastapi_offline") / "static"))

_HTML = "text/html; charset=utf-8"
_JS = "text/javascript; charset=utf-8"
_CSS = "text/css; charset=utf-8"

# Each route, the file it serves and its content type.
FILES = {
    "/": (DASHBOARD / "index.html", _HTML),
    "/dashboard/dashboard.js": (DASHBOARD / "dashboard.js", _JS),
    "/dashboard/dashboard.css": (DASHBOARD / "dashboard.css", _CSS),
    "/dashboard/textform.js": (DASHBOARD / "textform.js", _JS),
    "/docs": (DASHBOARD / "docs.html", _HTML),
    "/docs/docs.js": (DASHBOARD / "docs.js", _JS),
    "/docs/swagger-ui-bundle.js": (SWAGGER_UI / "swagger-ui-bundle.js", _JS),
    "/docs/swagger-ui.css": (SWAGGER_UI / "swagger-ui.css", _CSS),
    "/docs/favicon.png": (SWAGGER_UI / "favicon.png", "image/png"),
    **{f"/js/{module.name}": (module, _JS) for module in sorted((DASHBOARD / "js").glob("*.js"))},
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
    """Serve the dashboard's and the documentation's files from ``app`` (GET and
    HEAD, outside the OpenAPI document)."""
    for path, (file, media_type) in FILES.items():
        app.add_route(path, _serve(file, media_type), methods=["GET"], include_in_schema=False)


def _serve(file: Path, media_type: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return FileResponse(file, media_type=media_type, headers=HEADERS)

    return endpoint
