"""``GET /metrics``: the box's Prometheus metrics, under the dashboard's access rules.

With ``SENSOR_WEB_LOGIN_REQUIRED`` on, a scrape needs ``Authorization: Bearer <SENSOR_WEB_METRICS_TOKEN>``
(what Prometheus sends with its ``authorization:`` setting) or a logged-in session; otherwise it is open,
like the dashboard. A refused scrape gets a plain 401, not the login page's redirect.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from web.hub import get_hub
from web.metrics import BoxCollector


def registry() -> CollectorRegistry:
    """A registry holding the box collector only (no process or GC metrics of the client library)."""
    cfg = settings.SENSOR_WEB
    reg = CollectorRegistry(auto_describe=False)
    reg.register(BoxCollector(cfg.data_dir, cfg.box_id, get_hub))
    return reg


def token_ok(request: HttpRequest, expected: str | None) -> bool:
    """True when the request carries ``Authorization: Bearer <expected>`` (never when none is configured)."""
    if not expected:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


@require_safe
async def metrics(request: HttpRequest) -> HttpResponse:
    """The exposition, in the format the scraper asks for (Prometheus text or OpenMetrics).

    Async, so that it reads the hub on the event loop that updates it.
    """
    cfg = settings.SENSOR_WEB
    if cfg.login_required and not token_ok(request, cfg.metrics_token) \
            and not (await request.auser()).is_authenticated:
        response = HttpResponse("metrics need a bearer token (SENSOR_WEB_METRICS_TOKEN) or a login\n",
                                status=401, content_type="text/plain")
        response.headers["WWW-Authenticate"] = 'Bearer realm="sensor-box metrics"'
        return response
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(registry()), content_type=content_type)
