"""A Content-Security-Policy header: Django 5.2 has none built in, and the dashboard needs only 'self'.

``connect-src 'self'`` also covers the page's own websocket (ws: or wss: to the same host and port, CSP Level 3);
no other host can be reached from the page.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Add a strict same-origin Content-Security-Policy to every response that has none (sync and async)."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        """Set the header unless a view chose its own."""
        response.headers.setdefault("Content-Security-Policy", POLICY)
        return response
