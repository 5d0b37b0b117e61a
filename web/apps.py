"""Django app configuration for the dashboard."""

from django.apps import AppConfig


class WebConfig(AppConfig):
    """The dashboard app: page, status API, websocket consumers."""

    name = "web"
    label = "web"
    verbose_name = "Sensor dashboard"
