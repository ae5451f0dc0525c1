"""Production profile: HTTPS only, secure cookies, a real secret. ``check --deploy`` is clean with it."""
from django.core.exceptions import ImproperlyConfigured

from .base import MIDDLEWARE as _BASE_MIDDLEWARE
from .base import SECRET_KEY
from .env import env_bool, env_int

if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("dev-only"):
    raise ImproperlyConfigured(
        "DJANGO_ENV=production needs DJANGO_SECRET_KEY: at least 50 random characters "
        "(python -c 'import secrets; print(secrets.token_urlsafe(64))')."
    )

DEBUG = False
# WhiteNoise serves the collected static files (admin CSS, intake JS) right after the security middleware.
MIDDLEWARE = [_BASE_MIDDLEWARE[0], "whitenoise.middleware.WhiteNoiseMiddleware", *_BASE_MIDDLEWARE[1:]]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "warehouse.staticfiles.StaticFilesStorage"},
}
