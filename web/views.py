"""HTTP views: the dashboard page, the status JSON, and static files served by the app itself."""

from __future__ import annotations

import mimetypes
import posixpath
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified, JsonResponse
from django.shortcuts import render
from django.utils.http import http_date
from django.views.decorators.http import require_safe
from django.views.static import was_modified_since

from web.hub import get_hub
from web.status import snapshot

WINDOWS = (2, 5, 10, 30)
STATIC_MAX_AGE = 3600


def viewer_login(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Require a logged-in user when SENSOR_WEB_LOGIN_REQUIRED is on (an open lab display turns it off)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if settings.SENSOR_WEB.login_required and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


@require_safe
@viewer_login
def dashboard(request: HttpRequest) -> HttpResponse:
    """The live dashboard page."""
    return render(request, "web/dashboard.html", {
        "windows": WINDOWS,
        "default_window": 10,
        "login_required": settings.SENSOR_WEB.login_required,
    })


@require_safe
async def status_api(request: HttpRequest) -> HttpResponse:
    """The status panel's data as JSON (this process's view; for monitoring and scripts).

    Async, so that it reads the hub on the event loop that updates it.
    """
    if settings.SENSOR_WEB.login_required and not (await request.auser()).is_authenticated:
        return redirect_to_login(request.get_full_path())
    return JsonResponse(snapshot(get_hub(), settings.SENSOR_WEB.data_dir), json_dumps_params={"default": str})


@require_safe
def static_file(request: HttpRequest, path: str) -> HttpResponse:
    """Serve a static file from the apps' static folders (ours, the vendored uPlot, the admin's).

    A lab box runs one Daphne process and a handful of viewers, so the app serves its own few, small
    static files even with DEBUG off, found by django.contrib.staticfiles' finders and sent whole (a
    streamed file response would make Django iterate it synchronously under ASGI).
    """
    clean = posixpath.normpath(path).lstrip("/")
    if clean.startswith("..") or "\\" in clean:
        raise Http404("not found")
    found = finders.find(clean)
    if not found:
        raise Http404("not found")
    file = Path(found)
    stat = file.stat()
    if not was_modified_since(request.META.get("HTTP_IF_MODIFIED_SINCE"), int(stat.st_mtime)):
        return HttpResponseNotModified()
    content_type, encoding = mimetypes.guess_type(file.name)
    response = HttpResponse(file.read_bytes(), content_type=content_type or "application/octet-stream")
    if encoding:
        response.headers["Content-Encoding"] = encoding
    response.headers["Last-Modified"] = http_date(stat.st_mtime)
    response.headers["Cache-Control"] = f"public, max-age={STATIC_MAX_AGE}"
    return response
