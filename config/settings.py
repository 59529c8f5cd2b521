"""One settings module. Everything that differs between machines comes from the environment;
the defaults give a working local install (SQLite, Celery tasks run in process)."""

import contextlib
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_list(name: str) -> list[str]:
    return [item.strip().rstrip("/") for item in os.environ.get(name, "").split(",") if item.strip()]


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY when DJANGO_DEBUG is off.")
    SECRET_KEY = "insecure-local-development-key-do-not-deploy"  # noqa: S105 - debug only
ALLOWED_HOSTS = [
    h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",") if h
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "annotator",
    "axes",
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
    "annotator.middleware.FrameAncestorsMiddleware",
    "annotator.middleware.DatabaseUnavailableMiddleware",
    "axes.middleware.AxesMiddleware",
]
# Failed sign-ins are throttled (django-axes): five wrong passwords for one account from one address
# lock that pair for AXES_COOLOFF_MINUTES (15); `manage.py axes_reset` lifts every lock.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_MINUTES", "15")) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "annotator.services.throttle.request_client_address"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# No page may be framed, except the HIT page by Mechanical Turk's worker sites (it sets its own policy).
X_FRAME_OPTIONS = "DENY"


def _static_headers(headers: dict, _path: str, _url: str) -> None:
    """Static files (whitenoise answers them before the middleware above) may not be framed either."""
    headers["X-Frame-Options"] = "DENY"
    headers["Content-Security-Policy"] = "frame-ancestors 'none'"


WHITENOISE_ADD_HEADERS_FUNCTION = _static_headers
# DJANGO_PROXY_CLIENT_HEADER=1: the client's address is the last hop of X-Forwarded-For (set it only
# behind a proxy that appends it, as deploy/serve-production's nginx does).
PROXY_CLIENT_HEADER = env_bool("DJANGO_PROXY_CLIENT_HEADER", False)
# HIT pages with a platform's ids (MTurk) and study links (Prolific) one client address opens a minute.
HIT_PAGE_OPENS_PER_MINUTE = int(os.environ.get("HIT_PAGE_OPENS_PER_MINUTE", "30"))
# What every server process must share (rate-limit counters, the HIT pages workers have opened): files
# under var/cache by default, which gunicorn's workers on one machine all see; CACHE_URL=redis://host:6379/2
# for several machines.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["CACHE_URL"]}
        if os.environ.get("CACHE_URL", "").startswith(("redis://", "rediss://"))
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(Path(os.environ.get("CACHE_DIR", BASE_DIR / "var" / "cache"))),
            # Every write lists the folder (to cull past MAX_ENTRIES), so its cost grows with the entries:
            # about 3 ms at 1,000, 44 ms at 20,000 (measured). Past 1,000 a third are dropped at random.
            "OPTIONS": {"MAX_ENTRIES": 1_000},
        }
    )
}

# HTTPS, for a site served behind a proxy that ends TLS (deploy/: nginx in front of gunicorn).
# DJANGO_HTTPS=1: cookies only over HTTPS, plain HTTP redirected, HSTS for DJANGO_HSTS_SECONDS.
# DJANGO_PROXY_SSL_HEADER=1: trust the proxy's X-Forwarded-Proto (only when a proxy sets it, always).
# The MTurk HIT page sets no cookie at all (a signed token names the assignment), so no cookie needs
# SameSite=None to work inside MTurk's frame: session and CSRF cookies stay SameSite=Lax.
HTTPS = env_bool("DJANGO_HTTPS", False)
if env_bool("DJANGO_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(365 * 24 * 3600) if HTTPS else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", HTTPS)
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"), conn_max_age=60
    )
}
# SQLite's wait for a lock stays well below gunicorn's 30-second worker timeout, so a request under a
# held lock ends in the clear 503 (DatabaseUnavailableMiddleware), never in a killed worker.
SQLITE_TIMEOUT = float(os.environ.get("SQLITE_TIMEOUT", "10"))
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several processes and threads (a worker, the server) share the file: wait for locks instead of
    # failing. IMMEDIATE takes the write lock when a transaction begins; a deferred transaction that
    # reads and then writes (storing an answer) would otherwise fail at once with "database is locked"
    # when another one writes meanwhile, since SQLite cannot wait there without risking a deadlock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=SQLITE_TIMEOUT, transaction_mode="IMMEDIATE")
    # Tests that serve pages from a thread (the simulated crowd) need a test database every
    # connection sees: a file, not SQLite's per-connection memory.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / "test-db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "var" / "static"))
# With DEBUG off the app serves `collectstatic`'s output itself (whitenoise), so the admin keeps its
# styles behind any proxy; with DEBUG on it serves the apps' files directly.
WHITENOISE_USE_FINDERS = DEBUG
with contextlib.suppress(OSError):  # whitenoise reads it at start-up; empty before the first collectstatic
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Dissection artifacts (activation chunks, sweeps, masks, rendered images) live here.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "var" / "media"))
MEDIA_URL = "media/"
# The artifact store is that folder unless AWS_STORAGE_BUCKET_NAME names an S3 bucket (django-storages),
# which workers on several machines can share; AWS_S3_ENDPOINT_URL names another S3-compatible
# service. Credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID, a profile, an instance role).
if os.environ.get("AWS_STORAGE_BUCKET_NAME"):
    STORAGES = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": os.environ["AWS_STORAGE_BUCKET_NAME"],
                "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
                "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
                "location": os.environ.get("AWS_S3_LOCATION", ""),
                "file_overwrite": True,
                "default_acl": None,
            },
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }

# A worker's own device (cpu, cuda, cuda:1), overriding the dissection's --device: CPU and GPU
# workers on several machines then share one queued dissection, each on what it has.
DISSECT_DEVICE = os.environ.get("DISSECT_DEVICE", "")

# Celery. Unset broker: tasks run eagerly in the calling process (the embedded default).
CELERY_TASK_ALWAYS_EAGER = not os.environ.get("CELERY_BROKER_URL")
# (The in-memory transport only stops kombu asking for a host name; eager tasks never reach it.)
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "memory://"
CELERY_TASK_EAGER_PROPAGATES = True
# JSON only: tasks carry ids, never objects or tensors.
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A task is acknowledged after it ran, so a worker killed mid-task leaves it for another worker;
# every task is idempotent, so running one twice is harmless.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# On Redis a killed worker's unacknowledged task returns to the queue only after this many seconds
# (RabbitMQ returns it at once). Keep it above the longest task; a task run twice is harmless.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600"))}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A sweep of one image is the longest task; an hour is far beyond it on a CPU.
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", "3600"))
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The worker that finishes a stage queues the next one: if the broker is restarting just then, keep
# trying for about a minute rather than drop the stage (re-running `dissect --queue` also re-queues).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 30, "interval_start": 0.5, "interval_step": 0.5, "interval_max": 3}
CELERY_TASK_IGNORE_RESULT = True
# `celery -A config beat` keeps every campaign on a crowd platform in step with it (confirmations,
# decisions, auto-approvals) every this many seconds (MTURK_SYNC_SECONDS, its older name, still counts).
CELERY_BEAT_SCHEDULE = {
    "crowd-sync": {
        "task": "annotator.crowd_sync_all",
        "schedule": float(os.environ.get("CROWD_SYNC_SECONDS") or os.environ.get("MTURK_SYNC_SECONDS") or "600"),
    },
}

# Aggregation: a unit is a detector when its answers' mean precision reaches this (0.75 in the paper);
# the category is the plain majority, or "dawid-skene" (crowd-kit's worker-weighted model).
UNIT_DETECTOR_THRESHOLD = float(os.environ.get("UNIT_DETECTOR_THRESHOLD", "0.75"))
AGGREGATION_METHOD = os.environ.get("AGGREGATION_METHOD", "majority")
# A label "holds only at the top" when its precision makes the unit a detector but the whole interval of
# its correlation beyond the top images (the presence task's) lies below this.
PRESENCE_RHO_THRESHOLD = float(os.environ.get("PRESENCE_RHO_THRESHOLD", "0.3"))

# Mail (password resets, invitations): an SMTP server from the environment; the console in debug.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "unit-annotator@localhost")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "annotate-home"
# The address people reach this site at, for links printed by commands (lab links, invitations).
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")


# Mechanical Turk's worker sites: the only pages allowed to frame the HIT page, and the only places the
# HIT page posts answers to (turkSubmitTo). The *_EXTRA variables add origins (a proxy, a test endpoint).
MTURK_SUBMIT_ORIGINS = {
    "production": "https://www.mturk.com",
    "sandbox": "https://workersandbox.mturk.com",
}
MTURK_EXTRA_SUBMIT_ORIGINS = env_list("MTURK_EXTRA_SUBMIT_ORIGINS")
MTURK_FRAME_ANCESTORS = [
    "https://worker.mturk.com",
    "https://www.mturk.com",
    "https://workersandbox.mturk.com",
    *env_list("MTURK_EXTRA_FRAME_ANCESTORS"),
]

# The crowds a campaign can run on: one adapter each (annotator/crowds/). A new crowd is a module with
# a subclass of annotator.crowds.base.Crowd and one line here.
CROWDS = [
    "annotator.crowds.local.LocalCrowd",
    "annotator.crowds.mturk.MTurkCrowd",
    "annotator.crowds.prolific.ProlificCrowd",
]
# The kinds of question a HIT can ask: one Task each (annotator/task_kinds/); the first is the default.
HIT_TASKS = ["annotator.task_kinds.describe.DescribeTask", "annotator.task_kinds.presence.PresenceTask"]

# Mechanical Turk: credentials come from boto3's chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a
# profile, an instance role); MTURK_ENDPOINT_URL points its calls elsewhere (a proxy, a local service).
MTURK_ENDPOINT_URL = os.environ.get("MTURK_ENDPOINT_URL", "")
# Prolific: an API token (Prolific's settings page); its API's address (a local service in tests);
# where participants return with the completion code; the workspace whose participant group blocks
# participants from every study of the tool; the service fee on rewards and bonuses.
PROLIFIC_TOKEN = os.environ.get("PROLIFIC_TOKEN", "")
PROLIFIC_API_URL = os.environ.get("PROLIFIC_API_URL", "")
PROLIFIC_COMPLETION_URL = os.environ.get("PROLIFIC_COMPLETION_URL", "")
PROLIFIC_WORKSPACE_ID = os.environ.get("PROLIFIC_WORKSPACE_ID", "")
PROLIFIC_FEE_RATE = os.environ.get("PROLIFIC_FEE_RATE", "0.333")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
