"""Django settings for sensor-web: derived from WebSettings, built once at the edge.

This module is Django's entry point for configuration: it takes the WebSettings that `sensor-web`
installed, or builds them from the process environment when Django was started another way.
"""

from __future__ import annotations

import os

from web import config

SENSOR_WEB = config.installed() or config.WebSettings.from_env(os.environ)

SECRET_KEY = SENSOR_WEB.secret_key
DEBUG = SENSOR_WEB.debug
ALLOWED_HOSTS = list(SENSOR_WEB.allowed_hosts)
CSRF_TRUSTED_ORIGINS = list(SENSOR_WEB.csrf_trusted_origins)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "web.apps.WebConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "web.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "web.urls"
ASGI_APPLICATION = "web.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": SENSOR_WEB.db_path,
        "OPTIONS": {"timeout": 10},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# One Daphne process on the box: fan-out runs in-process (web.hub). With Redis, frames travel through the
# channel layer's group so that several processes can each serve viewers.
if SENSOR_WEB.redis_url:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 gives every socket read a 5 s timeout by default, the very time channels_redis blocks
            # waiting for a message (BZPOPMIN): every idle receive would fail. Reads may take longer than that
            # wait, not forever (a vanished Redis is still noticed).
            "CONFIG": {"hosts": [{"address": SENSOR_WEB.redis_url, "socket_timeout": 15}], "capacity": 1000,
                       "expiry": 10},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"

# Security headers and cookie flags (the box usually serves plain HTTP on a lab network; a TLS proxy in
# front turns the cookie flags on with SENSOR_WEB_SECURE_COOKIES=1).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Browsers honour Cross-Origin-Opener-Policy only on trustworthy origins (HTTPS, localhost); on a lab
# address over plain HTTP they ignore it and log an error in the console, so it is sent behind TLS only.
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin" if SENSOR_WEB.secure_cookies else None
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = SENSOR_WEB.secure_cookies
CSRF_COOKIE_SECURE = SENSOR_WEB.secure_cookies
# Behind a TLS front (SENSOR_WEB_HTTPS=1): it terminates HTTPS and says so in X-Forwarded-Proto; plain HTTP
# requests are redirected and browsers are told to use HTTPS only (HSTS).
if SENSOR_WEB.https:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
SECURE_HSTS_SECONDS = SENSOR_WEB.hsts_seconds
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = SENSOR_WEB.hsts_seconds > 0

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"django": {"level": "WARNING"}, "daphne": {"level": "WARNING"}},
}
