"""``/api/markers``: place an event marker (POST) or list the recording session's markers (GET).

Callers prove themselves in one of two ways: a script sends ``Authorization: Bearer <SENSOR_WEB_API_TOKEN>``
(source ``api``); the dashboard sends its session cookie and CSRF token (source ``dashboard``, the user when
logged in; login required when SENSOR_WEB_LOGIN_REQUIRED is on). Errors are JSON ``{"error": "..."}``:
400 bad request or label, 401/403 not allowed, 409 no session recording, 503 the file cannot be written.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from kernel.markers import SOURCE_API, SOURCE_DASHBOARD, MarkerError, append_marker, new_marker, read_markers
from web.hub import get_hub
from web.markers import MarkerRefused, announce, marker_message, target

log = logging.getLogger(__name__)

MAX_BODY = 4096  # bytes of a POST body


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _bearer(request: HttpRequest) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _caller(request: HttpRequest) -> tuple[str, str | None]:
    """(source, user) of an allowed request; MarkerRefused otherwise."""
    cfg = settings.SENSOR_WEB
    token = _bearer(request)
    if token is not None:
        if cfg.api_token is None:
            raise MarkerRefused(403, "API tokens are off: set SENSOR_WEB_API_TOKEN on the box")
        if not hmac.compare_digest(token.encode(), cfg.api_token.encode()):
            raise MarkerRefused(403, "wrong API token")
        return SOURCE_API, None
    user = await request.auser()
    if cfg.login_required and not user.is_authenticated:
        raise MarkerRefused(401, "log in, or send 'Authorization: Bearer <SENSOR_WEB_API_TOKEN>'")
    if request.method == "POST":
        rejected = CsrfViewMiddleware(lambda r: HttpResponse()).process_view(request, None, (), {})
        if rejected is not None:
            raise MarkerRefused(403, "CSRF check failed: send the page's CSRF token in X-CSRFToken")
    return SOURCE_DASHBOARD, user.get_username() if user.is_authenticated else None


def _body(request: HttpRequest) -> dict[str, Any]:
    if len(request.body) > MAX_BODY:
        raise MarkerRefused(400, f"request body over {MAX_BODY} bytes")
    try:
        doc = json.loads(request.body or b"")
    except ValueError as err:
        raise MarkerRefused(400, 'the body must be JSON: {"label": "...", "device": "..."}') from err
    if not isinstance(doc, dict):
        raise MarkerRefused(400, 'the body must be a JSON object: {"label": "...", "device": "..."}')
    return doc


@csrf_exempt  # checked in _caller for cookie-authenticated requests; token requests carry no cookie
async def markers_api(request: HttpRequest) -> HttpResponse:
    """POST places a marker in the recording session; GET lists that session's markers."""
    if request.method not in ("GET", "HEAD", "POST"):
        return _error(405, "use GET or POST")
    try:
        source, user = await _caller(request)
        hub, data_dir = get_hub(), settings.SENSOR_WEB.data_dir
        if request.method == "POST":
            doc = _body(request)
            device, session, folder = target(hub, data_dir, doc.get("device"))
            try:
                marker = new_marker(doc.get("label"), source, user)
            except MarkerError as err:
                raise MarkerRefused(400, str(err)) from err
            try:
                await asyncio.to_thread(append_marker, folder, marker)
            except OSError as err:
                log.error("cannot write the marker to %s: %s", folder, err)
                raise MarkerRefused(503, f"cannot write the markers file of {device}/{session}: "
                                    f"{err.strerror or err}") from err
            log.info("marker %r placed in %s/%s (%s%s)", marker.label, device, session, source,
                     f", {user}" if user else "")
            await announce(hub, marker_message(device, session, marker))
            return JsonResponse({"device": device, "session": session, "marker": marker.to_dict()}, status=201)
        device, session, folder = target(hub, data_dir, request.GET.get("device"))
        markers = await asyncio.to_thread(read_markers, folder)
        return JsonResponse({"device": device, "session": session, "markers": [m.to_dict() for m in markers]})
    except MarkerRefused as err:
        return _error(err.status, str(err))
