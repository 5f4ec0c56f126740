"""Lookalike settings: one module, every value from the environment with a safe default."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    """A string setting."""
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    """A boolean setting; anything but the usual spellings is an error."""
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use 1 or 0.")


def env_auto_bool(name: str) -> bool | str:
    """The string "auto" (the default: the code decides), or a boolean that forces it."""
    value = os.environ.get(name)
    if value is None or value.lower() == "auto":
        return "auto"
    return env_bool(name, False)


def env_int(name: str, default: int, minimum: int = 0) -> int:
    """An integer setting with a lower bound."""
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}.")
    return number


def env_float(name: str, default: float, minimum: float = 0.0, below: float | None = None) -> float:
    """A number setting in [minimum, below)."""
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None
    if not number >= minimum or (below is not None and not number < below):
        bound = f"at least {minimum:g}" + (f" and below {below:g}" if below is not None else "")
        raise ImproperlyConfigured(f"{name}={number:g} must be {bound}.")
    return number


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """A setting that must be one of a few values."""
    value = os.environ.get(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r}; choose one of {', '.join(choices)}.")
    return value


def env_fraction(name: str, default: float) -> float:
    """A number between 0 and 1."""
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None
    if not 0.0 <= number <= 1.0:
        raise ImproperlyConfigured(f"{name}={number} must be between 0 and 1.")
    return number


def database_from_url(url: str) -> dict:
    """Django DATABASES entry from sqlite:///path or postgres://user@host:port/name."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path[1:]) if parsed.path.startswith("/") else parsed.path
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path or ":memory:"}
    if parsed.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parsed.path.lstrip("/"),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": 60,
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL scheme {parsed.scheme!r} is not supported; use sqlite:/// or postgres://."
    )


VAR_DIR = Path(env_str("LOOKALIKE_VAR_DIR", str(BASE_DIR / "var")))
# The embedded defaults (SQLite, media, index) all live here; create it on first use.
VAR_DIR.mkdir(parents=True, exist_ok=True)

# "production" turns on the production defaults (Redis broker, a required SECRET_KEY).
PRODUCTION = env_choice("LOOKALIKE_ENV", "development", ("development", "production")) == (
    "production"
)
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and (PRODUCTION or env_bool("LOOKALIKE_REQUIRE_SECRET_KEY", False)):
        raise ImproperlyConfigured("Set SECRET_KEY to a long random string in production.")
    SECRET_KEY = "insecure-development-key-set-SECRET_KEY-in-production"
ALLOWED_HOSTS = [h for h in env_str("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in env_str("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "shop",
    "recommender",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # First after security: CORS for the partner API, and JSON (never HTML) for its errors.
    "recommender.middleware.PartnerApiMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

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
                "shop.context_processors.shop",
            ],
        },
    },
]

DATABASES = {
    "default": database_from_url(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'lookalike.sqlite3'}")
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Wait for a lock rather than fail when a worker process writes at the same time, and
    # give tests a database file (not memory) that a separate worker process can open.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30}
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-lookalike.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))

# Uploads: the whole photo is read into memory once, checked, re-encoded.
LOOKALIKE_MAX_UPLOAD_BYTES = env_int("LOOKALIKE_MAX_UPLOAD_BYTES", 10_000_000, minimum=1)
LOOKALIKE_MAX_PIXELS = env_int("LOOKALIKE_MAX_PIXELS", 40_000_000, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = LOOKALIKE_MAX_UPLOAD_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = LOOKALIKE_MAX_UPLOAD_BYTES + 1024 * 1024

# Embeddings: "auto" means resnet50 when its weights are available, else efficientnet_lite0.
LOOKALIKE_BACKBONE = env_str("LOOKALIKE_BACKBONE", "auto")
LOOKALIKE_WEIGHTS_FILE = env_str("LOOKALIKE_WEIGHTS_FILE", "") or None
LOOKALIKE_WEIGHTS_DOWNLOAD = env_bool("LOOKALIKE_WEIGHTS_DOWNLOAD", True)
LOOKALIKE_DEVICE = env_str("LOOKALIKE_DEVICE", "auto")
LOOKALIKE_PRECISION = env_choice("LOOKALIKE_PRECISION", "auto", ("auto", "fp32", "bf16", "fp16"))
LOOKALIKE_EMBED_BATCH_SIZE = env_int("LOOKALIKE_EMBED_BATCH_SIZE", 32, minimum=1)
# Embedding speed (docs/benchmarks.md measures each). Threads that read and decode photos.
LOOKALIKE_DECODE_WORKERS = env_int("LOOKALIKE_DECODE_WORKERS", min(4, os.cpu_count() or 1), 1)
# Decode stored JPEGs scaled down (by 2, 4 or 8) to what the backbone needs. Off: the vectors
# move by up to cosine 0.997 (docs/benchmarks.md), and the model, not decoding, is the bottleneck.
LOOKALIKE_DRAFT = env_bool("LOOKALIKE_DRAFT", False)
# The same for uploaded search photos (cut before the resize, so decoded at twice that size).
LOOKALIKE_QUERY_DRAFT = env_bool("LOOKALIKE_QUERY_DRAFT", False)
# torch.compile the backbone. "auto": in Celery workers, on a GPU or a CPU (bulk embedding: 2x
# the model's throughput on an H100 and on an AMX CPU, +18 % in fp32 on AVX2; a compile at the
# first two batch sizes, 14 s each on an H100, 5-60 s on 2 CPU cores), not in web processes (a
# search must not wait for a compile). 1 / 0 force it.
LOOKALIKE_COMPILE = env_auto_bool("LOOKALIKE_COMPILE")
# Load the model and run a photo through it when a web process starts, not on its first search.
LOOKALIKE_WARM_START = env_bool("LOOKALIKE_WARM_START", True)
# Retrieval pipeline (docs/evaluation.md measures each choice; the defaults are the best found).
# Extra backbones for a weighted ensemble, "name:weight,..." (the main backbone has weight 1).
LOOKALIKE_ENSEMBLE = env_str("LOOKALIKE_ENSEMBLE", "")
LOOKALIKE_CROP = env_choice("LOOKALIKE_CROP", "centre", ("letterbox", "centre"))
LOOKALIKE_POOLING = env_choice("LOOKALIKE_POOLING", "multi", ("avg", "gem", "multi"))
LOOKALIKE_MIRROR = env_bool("LOOKALIKE_MIRROR", True)
LOOKALIKE_COLOUR_WEIGHT = env_float("LOOKALIKE_COLOUR_WEIGHT", 0.1, below=1.0)
# Share of the score for the layout (3 x 3 regions of the stride-16 map, whitened apart).
LOOKALIKE_LAYOUT_WEIGHT = env_float("LOOKALIKE_LAYOUT_WEIGHT", 0.5, below=1.0)
LOOKALIKE_WHITEN_DIMS = env_int("LOOKALIKE_WHITEN_DIMS", 256)
LOOKALIKE_HEAD_WEIGHT = env_float("LOOKALIKE_HEAD_WEIGHT", 0.7, below=1.0)
LOOKALIKE_QUERY_HEAD_WEIGHT = env_float("LOOKALIKE_QUERY_HEAD_WEIGHT", 0.0, below=1.0)
LOOKALIKE_SUPPRESS_BACKGROUND = env_bool("LOOKALIKE_SUPPRESS_BACKGROUND", True)
# Catalog photos are embedded tilted by +/- this many degrees (0: upright; docs/evaluation.md).
LOOKALIKE_CATALOG_ROTATION = env_float("LOOKALIKE_CATALOG_ROTATION", 8.0, below=45.0)
LOOKALIKE_INDEX_DIR = Path(env_str("LOOKALIKE_INDEX_DIR", str(VAR_DIR / "index")))
# How often (seconds) a web process looks for a newer index version on disk.
LOOKALIKE_INDEX_CHECK_INTERVAL = float(env_str("LOOKALIKE_INDEX_CHECK_INTERVAL", "1.0"))
# Index kind: `auto` (exact for small catalogs, approximate above a size measured by
# scripts/bench_index.py), or always `flat` (exact), `hnsw` or `ivf`.
LOOKALIKE_INDEX_KIND = env_choice("LOOKALIKE_INDEX_KIND", "auto", ("auto", "flat", "hnsw", "ivf"))
# Search-time parameters of the approximate kinds; 0 = the default measured for recall >= 0.95.
LOOKALIKE_INDEX_EF_SEARCH = env_int("LOOKALIKE_INDEX_EF_SEARCH", 0, minimum=0)
LOOKALIKE_INDEX_NPROBE = env_int("LOOKALIKE_INDEX_NPROBE", 0, minimum=0)
# Web processes map the index file (shared pages) instead of reading a private copy.
LOOKALIKE_INDEX_MMAP = env_bool("LOOKALIKE_INDEX_MMAP", True)
# Each index version's neighbour lists (every product searched once, by a worker): a similar-
# items call by product reads its row instead of searching (recommender.neighbours).
LOOKALIKE_NEIGHBOURS = env_bool("LOOKALIKE_NEIGHBOURS", True)
LOOKALIKE_SIMILAR_K = env_int("LOOKALIKE_SIMILAR_K", 12, minimum=1)
# Each web process ranks every product's similar items for the default parameters ahead of the
# calls, from its catalog store and the neighbour lists (recommender.answers), in a thread of its
# own; `inline`: in the call that finds the work due (tests); `off`: each call ranks its own.
LOOKALIKE_DEFAULT_ANSWERS = env_choice(
    "LOOKALIKE_DEFAULT_ANSWERS", "background", ("background", "inline", "off")
)
LOOKALIKE_PAGE_SIZE = env_int("LOOKALIKE_PAGE_SIZE", 24, minimum=1)


# Aesthetics ranker: similar items are the top visual candidates reordered by
# (1 - weight) * similarity + weight * aesthetics / 100; 0 orders by similarity alone.
LOOKALIKE_AESTHETICS_WEIGHT = env_fraction("LOOKALIKE_AESTHETICS_WEIGHT", 0.15)
LOOKALIKE_AESTHETICS_CANDIDATES = env_int("LOOKALIKE_AESTHETICS_CANDIDATES", 50, minimum=1)
# Published (retrained) scorers; without one, the scorer shipped in the repository is live.
LOOKALIKE_AESTHETICS_DIR = Path(env_str("LOOKALIKE_AESTHETICS_DIR", str(VAR_DIR / "aesthetics")))
# A folder of rated photos (images/ + scores.csv) the periodic retraining also learns from.
_ratings_dir = env_str("LOOKALIKE_AESTHETICS_RATINGS_DIR", "")
LOOKALIKE_AESTHETICS_RATINGS_DIR = Path(_ratings_dir) if _ratings_dir else None
# Photos below this percentile of the catalog are flagged to their merchant with reasons.
LOOKALIKE_AESTHETICS_FLAG_PERCENTILE = env_int(
    "LOOKALIKE_AESTHETICS_FLAG_PERCENTILE", 20, minimum=0
)

# Celery: production uses Redis; in development with no broker configured, tasks run
# in-process so the demo needs nothing else.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0" if PRODUCTION else "")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
# A task is acknowledged when done, and goes back to the queue if its worker dies.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Unacknowledged tasks of a worker that vanished are redelivered after this many seconds.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1)
}
if env_str("CELERY_BROKER_KEY_PREFIX", ""):
    # Several deployments (or test runs) can share one Redis without taking each other's tasks.
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = env_str("CELERY_BROKER_KEY_PREFIX", "")
CELERY_TASK_DEFAULT_QUEUE = "default"
# Embedding has a queue of its own, so GPU hosts can run workers that consume only it.
LOOKALIKE_EMBED_QUEUE = env_str("LOOKALIKE_EMBED_QUEUE", "embedding")
CELERY_TASK_ROUTES = {
    "recommender.tasks.embed_products": {"queue": LOOKALIKE_EMBED_QUEUE},
    "recommender.tasks.score_photos": {"queue": LOOKALIKE_EMBED_QUEUE},
}
LOOKALIKE_RECONCILE_SECONDS = env_int("LOOKALIKE_RECONCILE_SECONDS", 900, minimum=10)
CELERY_BEAT_SCHEDULE = {
    "reconcile-index": {
        "task": "recommender.tasks.reconcile_index",
        "schedule": float(LOOKALIKE_RECONCILE_SECONDS),
    },
}

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "EXCEPTION_HANDLER": "recommender.apis.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Lookalike partner API",
    "DESCRIPTION": (
        "Visually similar products from a merchant's catalog, for partner sites. Every catalog "
        "endpoint needs an API key (`Authorization: Bearer lk_...` or `X-Api-Key: lk_...`), "
        "created by the merchant at /merchant/api-keys/. Errors always have the same JSON "
        "shape: `{code, message, errors}`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "recommender.api_docs.add_retry_after_header",
    ],
}


def cache_from_url(url: str) -> dict:
    """Django CACHES entry: Redis for redis:// URLs, else one process's memory."""
    if not url:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    if urlparse(url).scheme not in ("redis", "rediss", "unix"):
        raise ImproperlyConfigured(f"LOOKALIKE_CACHE_URL={url!r}: use redis://host:port/db.")
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": env_str("LOOKALIKE_CACHE_PREFIX", "lookalike"),
    }


# API rate limits are counted in this cache: in production a Redis (database 1 of the local one
# unless LOOKALIKE_CACHE_URL or REDIS_URL says otherwise), so every web process counts in the
# same place; in development, one process's memory.
CACHES = {
    "default": cache_from_url(
        env_str("LOOKALIKE_CACHE_URL", "")
        or env_str("REDIS_URL", "")
        or ("redis://127.0.0.1:6379/1" if PRODUCTION else "")
    )
}

# Partner API keys: defaults for keys that set no limits of their own.
LOOKALIKE_API_BURST_LIMIT = env_int("LOOKALIKE_API_BURST_LIMIT", 20, minimum=1)
LOOKALIKE_API_BURST_WINDOW = env_int("LOOKALIKE_API_BURST_WINDOW", 10, minimum=1)
LOOKALIKE_API_SUSTAINED_LIMIT = env_int("LOOKALIKE_API_SUSTAINED_LIMIT", 1000, minimum=1)
LOOKALIKE_API_SUSTAINED_WINDOW = env_int("LOOKALIKE_API_SUSTAINED_WINDOW", 3600, minimum=1)
LOOKALIKE_API_DAILY_QUOTA = env_int("LOOKALIKE_API_DAILY_QUOTA", 10_000, minimum=1)
# Each process adds up API usage in memory and writes it this often (0: a write per call).
LOOKALIKE_API_USAGE_FLUSH_SECONDS = env_int("LOOKALIKE_API_USAGE_FLUSH_SECONDS", 5)
# Off only to measure the API without keys, limits and usage counting: it then answers anyone
# from every catalog. Never in production.
LOOKALIKE_API_KEYS_REQUIRED = env_bool("LOOKALIKE_API_KEYS_REQUIRED", True)
# Similar-item answers are cached under the index version (a new version is seen at once);
# product data in them (price, stock, title, active) may be this many seconds old. "local":
# in each web process, "shared": in Django's cache (Redis in production), "off". Measured in
# docs/benchmarks.md (scripts/bench_api.py).
LOOKALIKE_API_RESULT_CACHE = env_choice(
    "LOOKALIKE_API_RESULT_CACHE", "local", ("local", "shared", "off")
)
LOOKALIKE_API_RESULT_CACHE_SECONDS = env_int("LOOKALIKE_API_RESULT_CACHE_SECONDS", 10)
LOOKALIKE_API_CACHE_SIZE = env_int("LOOKALIKE_API_CACHE_SIZE", 10_000)
# Each web process keeps the cards of all active products in memory (recommender/catalog_store.py)
# so that similar items need no database query; a write to the catalog reaches every process's
# copy at once (a version in Django's cache), and each copy syncs at least every MAX_AGE seconds.
# Off: each similar-items call reads its candidates from the database.
LOOKALIKE_CATALOG_STORE = env_bool("LOOKALIKE_CATALOG_STORE", True)
LOOKALIKE_CATALOG_STORE_MAX_AGE = env_int("LOOKALIKE_CATALOG_STORE_MAX_AGE", 30, minimum=1)
# The API's JSON of each card, kept per web process with the catalog store's snapshot (about
# 600 bytes a product; 0: written for every call).
LOOKALIKE_API_CARD_CACHE_SIZE = env_int("LOOKALIKE_API_CARD_CACHE_SIZE", 100_000, minimum=0)
# Each web process keeps a key it has checked this many seconds (0: a database read per call),
# so a key revoked in another process stops working within this time (at once in this one).
LOOKALIKE_API_KEY_CACHE_SECONDS = env_int("LOOKALIKE_API_KEY_CACHE_SECONDS", 10)
# The no-op endpoints /api/v1/bench/noop/ and /api/v1/bench/noop-keyed/ that scripts/bench_api.py
# compares the similar-items endpoint with; 404 unless switched on.
LOOKALIKE_API_BENCH_ENDPOINTS = env_bool("LOOKALIKE_API_BENCH_ENDPOINTS", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "faiss.loader": {"level": "WARNING"},
    },
}

# The demo serves photos from Django itself; behind a real web server, turn this off.
LOOKALIKE_SERVE_MEDIA = env_bool("LOOKALIKE_SERVE_MEDIA", True)

# Merchants sign in with Django accounts; the dashboard is under /merchant/.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "merchant:dashboard"
LOGOUT_REDIRECT_URL = "shop:catalog"

# Catalog imports. Uploads wait in each job's own folder here until the job has run; keep it
# out of MEDIA_ROOT (served to everyone) and, with separate workers, on storage they share.
LOOKALIKE_IMPORT_DIR = Path(env_str("LOOKALIKE_IMPORT_DIR", str(VAR_DIR / "imports")))
LOOKALIKE_IMPORT_MAX_UPLOAD_BYTES = env_int(
    "LOOKALIKE_IMPORT_MAX_UPLOAD_BYTES", 500_000_000, minimum=1
)
LOOKALIKE_IMPORT_MAX_ROWS = env_int("LOOKALIKE_IMPORT_MAX_ROWS", 50_000, minimum=1)
LOOKALIKE_IMPORT_MAX_ZIP_ENTRIES = env_int("LOOKALIKE_IMPORT_MAX_ZIP_ENTRIES", 20_000, minimum=1)
LOOKALIKE_IMPORT_MAX_ZIP_BYTES = env_int("LOOKALIKE_IMPORT_MAX_ZIP_BYTES", 2_000_000_000, minimum=1)
LOOKALIKE_IMPORT_MAX_ZIP_RATIO = env_int("LOOKALIKE_IMPORT_MAX_ZIP_RATIO", 100, minimum=1)
# Rows saved per transaction; each batch's new photos go to the embedder as one task.
LOOKALIKE_IMPORT_BATCH_SIZE = env_int("LOOKALIKE_IMPORT_BATCH_SIZE", 100, minimum=1)
# "Many photos at once" sends one form field per photo; Django's default stops at 100.
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("LOOKALIKE_IMPORT_MAX_FILES", 1000, minimum=1)
