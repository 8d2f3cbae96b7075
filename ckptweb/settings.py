"""Django settings for ckptweb, read from the environment (see README "Configuration").

SQLite under ``CKPTWEB_DATA_DIR`` unless ``DATABASE_URL`` is set; Celery tasks run eagerly
unless ``CELERY_BROKER_URL`` is set. A malformed variable stops start-up with a message
naming it.
"""

import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from ckptweb.lib.env import envbool, envint, envlist, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(envstr("CKPTWEB_DATA_DIR") or BASE_DIR / "var").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the data dir."""
    key = envstr("SECRET_KEY")
    if key:
        return key
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",  # only for the migration of its tokens into accounts
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "axes",
    "csp",
    "ckptweb.audit",
    "storage",
    "experiments",
    "storage.reconcile",
    "ckptweb.detcompat",
    "ckptweb.accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "ckptweb.audit.record.AuditMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into ckptweb.signin's answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "ckptweb.urls"
# Bodies up to 16 MiB (batch reports); larger ones are a JSON 413 (ckptweb.lib.limits).
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024
WSGI_APPLICATION = "ckptweb.wsgi.application"

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

_database_url = envstr("DATABASE_URL")
if _database_url:
    try:
        _db = dj_database_url.parse(_database_url, conn_max_age=envint("CONN_MAX_AGE", 60))
    except Exception as exc:  # dj-database-url raises several types for bad URLs
        raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from None
    if not _db.get("ENGINE") or not _db.get("NAME"):
        raise ImproperlyConfigured("DATABASE_URL must name an engine and a database")
    DATABASES = {"default": _db}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "ckptweb.sqlite3",
            # Concurrent writers wait instead of failing "database is locked": every
            # transaction takes the write lock at BEGIN (no deferred read->write upgrade,
            # which SQLite refuses without waiting), and waits up to 20 s for it.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The covering indexes (INCLUDE columns) are a PostgreSQL feature; SQLite keeps the key part
# and ignores the rest, which is all a development database needs, so its warning is noise.
SILENCED_SYSTEM_CHECKS = []
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    SILENCED_SYSTEM_CHECKS.append("models.W040")

# The Determined hasher first: new and upgraded hashes verify for web and `det` logins alike
# (ckptweb/detcompat/hashers.py); plain PBKDF2 hashes still verify and upgrade at next login.
PASSWORD_HASHERS = [
    "ckptweb.detcompat.hashers.DeterminedPBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
#: Hours a `det user login` token stays valid.
CKPTWEB_DET_TOKEN_HOURS = envint("CKPTWEB_DET_TOKEN_HOURS", 168, minimum=1)

# Sign-in throttling (django-axes, its rows in the database, so every worker and process
# shares them): after CKPTWEB_LOGIN_FAILURES failed sign-ins of one username from one IP
# address, that pair is refused for CKPTWEB_LOGIN_COOLOFF_MINUTES, before any password hash
# is computed. Only the pair: an attacker elsewhere cannot lock a user out, and users behind
# one address (a NAT, or a proxy when no CKPTWEB_PROXY_COUNT is set) are not locked together.
# The web sign-in and the admin's go through AxesBackend; `det user login` asks axes itself
# (ckptweb/detcompat/auth.py). `manage.py axes_reset_username <name>` unlocks a user.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("CKPTWEB_LOGIN_FAILURES", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=envint("CKPTWEB_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# A refused attempt writes nothing: the lock ends a fixed time after the last counted failure,
# and hammering a locked pair costs one read per request.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# No row per successful sign-in (the access log would grow forever; `det` logins have no
# session for it to name).
AXES_DISABLE_ACCESS_LOG = True
AXES_LOCKOUT_CALLABLE = "ckptweb.signin.lockout_response"
AXES_CLIENT_IP_CALLABLE = "ckptweb.lib.addresses.client_ip"
# Reverse proxies in front of ckptweb that append the client's address to X-Forwarded-For;
# 0 (the default) takes REMOTE_ADDR and ignores the header, which a client could forge.
CKPTWEB_PROXY_COUNT = envint("CKPTWEB_PROXY_COUNT", 0)
# Audit events older than this many days are deleted by the GC sweep; 0 keeps them all.
CKPTWEB_AUDIT_RETENTION_DAYS = envint("CKPTWEB_AUDIT_RETENTION_DAYS", 365, minimum=0)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Content-Security-Policy (django-csp) on every response: scripts and style sheets from this
# origin only (no inline script, no eval; htmx's own indicator <style> is off in base.html);
# inline style *attributes* stay allowed (bar widths and chart swatches are set that way).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "style-src-elem": [SELF],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# HTTPS deployments (README "Security"): CKPTWEB_HTTPS=1 behind a TLS-terminating proxy that
# sets X-Forwarded-Proto (and strips it from clients). Off, plain-HTTP `make run` works as is.
CKPTWEB_HTTPS = envbool("CKPTWEB_HTTPS", False)
if CKPTWEB_HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = envbool("CKPTWEB_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = envint("CKPTWEB_HSTS_SECONDS", 31_536_000)
    # Covers the subdomains of ckptweb's own host name only, not its parent domain's.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("CKPTWEB_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = envbool("CKPTWEB_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading puts the domain in browsers' lists for months: its owner's decision,
        # opted into with CKPTWEB_HSTS_PRELOAD=1, so its absence is no warning here.
        SILENCED_SYSTEM_CHECKS.append("security.W021")

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header turns "not signed in" into 401, not 403.
        "ckptweb.accounts.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "ckptweb.api.exception_handler",
    # JSON within ckptweb.lib.limits first; forms for the browsable pages of DRF's defaults.
    "DEFAULT_PARSER_CLASSES": [
        "ckptweb.api.LimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# API tokens: django-rest-knox with ckptweb.accounts' model (named, last use), hashed at rest;
# ``Authorization: Token <key>`` as DRF's tokens were. Expiry is per token (none by default).
KNOX_TOKEN_MODEL = "accounts.ApiToken"  # noqa: S105 (a model name, not a secret)
# knox's own migrations create its AuthToken table even when the model is swapped out (an
# orphan table with a foreign key to users, which PostgreSQL then refuses to truncate): skip
# them; the swapped-out model has no table.
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {"TOKEN_TTL": None, "AUTH_HEADER_PREFIX": "Token", "TOKEN_MODEL": KNOX_TOKEN_MODEL}
SPECTACULAR_SETTINGS = {
    "TITLE": "ckptweb API",
    "DESCRIPTION": "Experiments, trials, validations and checkpoints; downloads and GC.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Celery: eager (in-process) unless a broker is configured.
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 3600, minimum=1)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Interval of the periodic GC sweep that retries ERROR checkpoints and resumes abandoned runs.
CKPTWEB_GC_SWEEP_SECONDS = envint("CKPTWEB_GC_SWEEP_SECONDS", 300, minimum=1)
# Without a broker (no beat), serving processes run the sweep on a timer (experiments/gc/sweep.py).
CKPTWEB_INPROCESS_SWEEP = envbool("CKPTWEB_INPROCESS_SWEEP", True)
# A GC run whose heartbeat is older than this is taken for dead and resumed by the sweep.
CKPTWEB_GC_STALE_SECONDS = envint("CKPTWEB_GC_STALE_SECONDS", 600, minimum=1)
# Background runs (GC runs, storage scans, orphan deletions): a task that fails on storage
# errors is retried this many times, the delay starting at RETRY_BACKOFF seconds and doubling
# (with jitter) up to RETRY_BACKOFF_MAX; the stale limits above are a few multiples of it.
CKPTWEB_RUN_MAX_RETRIES = envint("CKPTWEB_RUN_MAX_RETRIES", 5, minimum=0)
CKPTWEB_RUN_RETRY_BACKOFF = envint("CKPTWEB_RUN_RETRY_BACKOFF", 5, minimum=1)
CKPTWEB_RUN_RETRY_BACKOFF_MAX = envint("CKPTWEB_RUN_RETRY_BACKOFF_MAX", 120, minimum=1)
# Checkpoints per storage call of a GC run (and per progress update).
CKPTWEB_GC_BATCH_SIZE = envint("CKPTWEB_GC_BATCH_SIZE", 100, minimum=1)
#: Seconds an upload session stays open before the sweep aborts it (storage/uploads.py).
CKPTWEB_UPLOAD_SESSION_SECONDS = envint("CKPTWEB_UPLOAD_SESSION_SECONDS", 24 * 3600, minimum=60)
#: Files over this many bytes are uploaded in parts of this size (S3's smallest part: 5 MiB).
CKPTWEB_UPLOAD_PART_BYTES = envint(
    "CKPTWEB_UPLOAD_PART_BYTES", 64 * 1024 * 1024, minimum=5 * 1024 * 1024
)
# Storage scans: a directory younger than this is never called orphaned (training may still
# be writing it); a scan or orphan deletion silent for longer is taken for dead.
CKPTWEB_SCAN_GRACE_SECONDS = envint("CKPTWEB_SCAN_GRACE_SECONDS", 3600)
CKPTWEB_SCAN_STALE_SECONDS = envint("CKPTWEB_SCAN_STALE_SECONDS", 600, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "gc-sweep": {"task": "experiments.tasks.gc_sweep", "schedule": CKPTWEB_GC_SWEEP_SECONDS},
}

# Behind nginx (README "Serving files through nginx"): a shared_fs file's GET answers
# ``X-Accel-Redirect: <prefix><absolute file path>`` and nginx sends the bytes from an
# ``internal`` location. Unset (the default): gunicorn sends them itself (sendfile).
CKPTWEB_ACCEL_REDIRECT_PREFIX = envstr("CKPTWEB_ACCEL_REDIRECT_PREFIX") or ""
if CKPTWEB_ACCEL_REDIRECT_PREFIX and not (
    CKPTWEB_ACCEL_REDIRECT_PREFIX.startswith("/")
    and CKPTWEB_ACCEL_REDIRECT_PREFIX.endswith("/")
    and CKPTWEB_ACCEL_REDIRECT_PREFIX.isprintable()
    and " " not in CKPTWEB_ACCEL_REDIRECT_PREFIX
):
    raise ImproperlyConfigured(
        "CKPTWEB_ACCEL_REDIRECT_PREFIX must be a URL path starting and ending with '/', "
        f"not {CKPTWEB_ACCEL_REDIRECT_PREFIX!r}"
    )

# Master configuration (the spec's "checkpoint_storage" of the master config file).
CKPTWEB_CONFIG = envstr("CKPTWEB_CONFIG")
# Where shared_fs storage lives when no master config says otherwise.
CKPTWEB_DEFAULT_SHARED_FS = DATA_DIR / "checkpoints"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO") or "INFO"},
    "loggers": {
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        # azure-core logs every request and response at INFO.
        "azure": {"level": "WARNING"},
        # django-axes logs every start and successful sign-in at INFO; failures and locks warn.
        "axes": {"level": "WARNING"},
    },
}
