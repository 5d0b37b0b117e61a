"""ASGI entry point: HTTP through Django, websockets to the ingest and live consumers."""

from __future__ import annotations

import os

from django.conf import settings

if not settings.configured:  # started as `daphne web.asgi:application`, not by sensor-web
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "web.settings")

from django.core.asgi import get_asgi_application

django_application = get_asgi_application()  # sets Django up before the consumers import models

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from web.consumers import IngestConsumer, LiveConsumer

# The reader is not a browser (no Origin header) and proves itself with its token; viewers are browsers,
# so their Origin must be one of ALLOWED_HOSTS and their session cookie names the user.
websocket_application = URLRouter([
    path("ws/ingest/", IngestConsumer.as_asgi()),
    path("ws/live/", AllowedHostsOriginValidator(AuthMiddlewareStack(LiveConsumer.as_asgi()))),
])

application = ProtocolTypeRouter({"http": django_application, "websocket": websocket_application})
