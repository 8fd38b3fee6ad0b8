"""The live dashboard: ``GET /`` serves ``static/index.html``; ``/static`` serves JS, CSS and vendored libs.

No build step: the page is plain ES modules and CSS, with uPlot vendored under ``static/vendor/``.
Usage (in the gateway's app factory)::

    from services.gateway.routers import dashboard
    app.include_router(dashboard.router)
    dashboard.mount_static(app)
"""

from __future__ import annotations

import mimetypes
import os
from os import PathLike
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from services.gateway.auth.guard import Public

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
INDEX_HTML = STATIC_DIR / "index.html"

# The page and its modules change with every deploy; make browsers revalidate instead of caching stale JS.
_NO_CACHE = {"Cache-Control": "no-cache"}

router = APIRouter(tags=["dashboard"])


@router.get("/", include_in_schema=False)
def index(_: Public) -> FileResponse:
    """The single-page dashboard (hash routing: ``#/`` fleet, ``#/asset/<id>`` one asset)."""
    return FileResponse(INDEX_HTML, media_type="text/html", headers=_NO_CACHE)


class _RevalidatingStaticFiles(StaticFiles):
    """StaticFiles that asks browsers to revalidate (ETag/Last-Modified still give cheap 304s)."""

    def file_response(
        self,
        full_path: PathLike[str] | str,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        resp = super().file_response(full_path, stat_result, scope, status_code)
        resp.headers.update(_NO_CACHE)
        return resp


def mount_static(app: FastAPI) -> None:
    """Mount ``static/`` at ``/static`` on ``app`` (raises RuntimeError if the directory is missing)."""
    # ES modules need a JavaScript MIME type; some platforms' registries map .js to text/plain.
    mimetypes.add_type("text/javascript", ".js")
    if not INDEX_HTML.is_file():
        raise RuntimeError(f"dashboard files missing: {INDEX_HTML} not found")
    app.mount("/static", _RevalidatingStaticFiles(directory=STATIC_DIR), name="static")
