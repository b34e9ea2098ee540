"""Posture settings: one module, read from the environment.

A fresh clone runs with nothing set: DEBUG on, a SQLite file in var/, Celery tasks run
in-process. Production sets DEBUG=false, and then the secret key and the checkpoint signing key
are required (the process refuses to start without them).
"""

import os
from pathlib import Path

import dj_database_url
import plotly
from django.core.exceptions import ImproperlyConfigured

from posture.env import envbool, envint, envlist, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("POSTURE_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = envbool("DEBUG", "true")

SECRET_KEY = envstr("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off "
            "(set DEBUG=true for local development, or SECRET_KEY for production)."
        )
    SECRET_KEY = "insecure-local-development-key-never-used-when-debug-is-off"  # noqa: S105

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "csp",
    "posture",
    "audit",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "posture.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "posture.urls"
WSGI_APPLICATION = "posture.wsgi.application"

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
                "posture.context.navigation",
            ],
        },
    },
]

# Database: DATABASE_URL, or a SQLite file in var/ (WAL, immediate transactions so that
# concurrent writers queue instead of failing on a lock upgrade).
DATABASES = {
    "default": dj_database_url.parse(
        envstr("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'posture.sqlite3'}",
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", "60"),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # One test database file per process, so parallel test runs never share one.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-posture-{os.getpid()}.sqlite3")}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif envbool("DATABASE_PREPARED_STATEMENTS", "true"):
    # psycopg prepares a statement that the server binds (the per-batch statements of ingest,
    # the rollups' bulk writes) after its fifth use; Django leaves that off by default for
    # poolers. Turn it off behind a pooler in transaction mode that does not keep prepared
    # statements (PgBouncer before 1.21).
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# plotly.js comes from the plotly package itself: served locally, never from a CDN.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/plotly", Path(plotly.__file__).resolve().parent / "package_data"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Pages work on a closed network under a strict policy: no inline scripts, nothing from other
# origins. Charts and page data travel as JSON in <script type="application/json"> (which a
# policy does not run) and static scripts draw them. Styles may be inline: plotly.js and htmx
# inject their own <style> elements and style attributes (scripts never may).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes anonymous calls answer 401.
        "posture.authentication.PersonalTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["posture.permissions.IsPerson"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "posture.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

SPECTACULAR_SETTINGS = {
    "TITLE": "Posture API",
    "DESCRIPTION": "Ingest enforcement events into the tamper-evident ledger and read them back.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["posture.permissions.IsPerson"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Celery: no broker configured means tasks run eagerly in-process (the embedded default).
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# A worker keeps its database connection for this many tasks (Celery would otherwise open a new
# one, and so a new PostgreSQL backend, for every task); posture.celery drops one that broke or
# is older than CONN_MAX_AGE before each task, as Django does before each request.
CELERY_DB_REUSE_MAX = 100
CELERY_BEAT_SCHEDULE = {
    "ledger-checkpoint": {
        "task": "audit.tasks.checkpoint_create_task",
        "schedule": envint("POSTURE_CHECKPOINT_INTERVAL_SECONDS", "60"),
    },
    "ledger-verify": {
        "task": "audit.tasks.ledger_verify_task",
        "schedule": envint("POSTURE_VERIFY_INTERVAL_SECONDS", "3600"),
    },
    "rollups-catch-up": {
        "task": "posture.tasks.rollups_catch_up_task",
        "schedule": envint("POSTURE_ROLLUP_CATCH_UP_SECONDS", "30"),
    },
    # Marks lapsed exceptions expired and sends the expiring / expired notices.
    "exceptions-expire": {
        "task": "posture.tasks.exceptions_expire_task",
        "schedule": envint("POSTURE_EXCEPTION_EXPIRY_SECONDS", "300"),
    },
}

# Email (exception notifications): printed to the console in DEBUG, SMTP otherwise.
EMAIL_BACKEND = envstr(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = envstr("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", "25")
EMAIL_HOST_USER = envstr("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "false")
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "posture@localhost")
# For EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend (one file per message).
EMAIL_FILE_PATH = envstr("EMAIL_FILE_PATH") or None

# The ledger.
# Ed25519 private key for checkpoints: PEM in POSTURE_SIGNING_KEY, or a PEM file. In DEBUG a
# key is generated into var/ on first use; in production it must be given.
POSTURE_SIGNING_KEY = envstr("POSTURE_SIGNING_KEY")
POSTURE_SIGNING_KEY_FILE = envstr("POSTURE_SIGNING_KEY_FILE", str(VAR_DIR / "signing-key.pem"))
if not DEBUG and not POSTURE_SIGNING_KEY and not Path(POSTURE_SIGNING_KEY_FILE).is_file():
    raise ImproperlyConfigured(
        "POSTURE_SIGNING_KEY (an Ed25519 private key in PEM) or POSTURE_SIGNING_KEY_FILE is "
        "required when DEBUG is off; create one with: python manage.py generate_signing_key"
    )
# Public keys (base64 raw, comma separated) of earlier signing keys whose checkpoints stay valid.
POSTURE_TRUSTED_PUBLIC_KEYS = envlist("POSTURE_TRUSTED_PUBLIC_KEYS")
# A folder where every new checkpoint is also appended as a JSON line, outside the database.
POSTURE_CHECKPOINT_EXPORT_DIR = envstr("POSTURE_CHECKPOINT_EXPORT_DIR")
POSTURE_INGEST_MAX_EVENTS = envint("POSTURE_INGEST_MAX_EVENTS", "1000")
POSTURE_INGEST_MAX_BYTES = envint("POSTURE_INGEST_MAX_BYTES", str(5 * 1024 * 1024))
# Exceptions: the longest duration (days) an exception may ask for, by its rule's severity;
# "" is a rule whose severity is unknown (uncatalogued).
POSTURE_EXCEPTION_MAX_DAYS = {
    "critical": envint("POSTURE_EXCEPTION_MAX_DAYS_CRITICAL", "7"),
    "high": envint("POSTURE_EXCEPTION_MAX_DAYS_HIGH", "30"),
    "medium": envint("POSTURE_EXCEPTION_MAX_DAYS_MEDIUM", "90"),
    "low": envint("POSTURE_EXCEPTION_MAX_DAYS_LOW", "90"),
    "info": envint("POSTURE_EXCEPTION_MAX_DAYS_INFO", "90"),
    "": envint("POSTURE_EXCEPTION_MAX_DAYS_UNKNOWN", "90"),
}
# Prometheus scrapers send this as a bearer token; without it /metrics is for admins only.
POSTURE_METRICS_TOKEN = envstr("POSTURE_METRICS_TOKEN")

# Ingest bodies are read raw by the ingest view, which enforces its own limits.
DATA_UPLOAD_MAX_MEMORY_SIZE = POSTURE_INGEST_MAX_BYTES + 1024

# Security. Production values are on unless DEBUG; each can be turned off behind a proxy that
# terminates TLS differently.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "false" if DEBUG else "true")
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000")
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "false" if DEBUG else "true")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "posture.logging.JsonLineFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
