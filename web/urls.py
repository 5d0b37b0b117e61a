"""URL routes: the dashboard, its status and markers APIs, the metrics, login, the admin and the static files."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path, re_path

from web import markers_api, scrape, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("api/status", views.status_api, name="status-api"),
    path("metrics", scrape.metrics, name="metrics"),
    path("api/markers", markers_api.markers_api, name="markers-api"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    re_path(r"^static/(?P<path>.+)$", views.static_file, name="static"),
]
