"""genbot settings: the one settings module.

Every knob comes from the environment through django-environ (a `.env` file in the project
root is read when present) and is documented in `.env.example`. Defaults run locally: SQLite,
no Telegram token, the YooKassa stub and fake AI providers.
"""
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# --- core -------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
# Public (it is in this file): only for DEBUG runs. bin/run keeps a generated key in var/secret_key
# and bin/test sets one of its own, so neither needs DEBUG.
DEVELOPMENT_SECRET_KEY = "django-insecure-genbot-local-development-only"
SECRET_KEY = env("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEVELOPMENT_SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set (DEBUG is off): set it to a long random string, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))' (bin/run keeps one in var/secret_key), "
        "or DEBUG=true on a development machine."
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
ADMIN_PATH = env("ADMIN_PATH", default="admin/")

INSTALLED_APPS = [
    "genbot.admin_config.GenbotAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Its ordinals ("3rd", "3-й") in the customers' languages: a job's place in line.
    "django.contrib.humanize",
    "django_rq",
    "axes",
    "billing",
    "payments",
    "jobs",
    "promotions",
    "telegram_bot",
    # Last: its admin module extends the other apps' admin (support's customer page).
    "genbot",
]
# The local stand-ins of outside services (Bot API sandbox, YooKassa, Gemini, Kling, S3) and their
# commands (run_sandbox, yookassa_stub); no product module imports them. Off in production.
STANDINS = env.bool("STANDINS", default=True)
if STANDINS:
    INSTALLED_APPS.append("standins")

MIDDLEWARE = [
    "genbot.logcontext.RequestIdMiddleware",
    "genbot.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "genbot.urls"
WSGI_APPLICATION = "genbot.wsgi.application"

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

# --- database ---------------------------------------------------------------------------------
# DATABASE_URL wins (postgres://user@host:5432/name); without it an SQLite file at DATABASE_PATH
# (the old system's setting) in WAL mode. IMMEDIATE transactions take SQLite's write lock at
# BEGIN, so on SQLite every transaction that writes money is serialised: that is its row lock.
DEFAULT_DATABASE_PATH = BASE_DIR / "var" / "genbot.sqlite3"
DATABASE_PATH = env("DATABASE_PATH", default=str(DEFAULT_DATABASE_PATH))
# The local run's own database (bin/run creates its demo staff user only there).
DATABASE_IS_LOCAL_DEFAULT = not env("DATABASE_URL", default="") and Path(DATABASE_PATH).resolve() == DEFAULT_DATABASE_PATH
# Lets several test runs share one machine: each gets its own test database.
TEST_DB_SUFFIX = env("TEST_DB_SUFFIX", default="")
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATABASE_PATH}")}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db.setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=30),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests use a file, not ":memory:", so that threads in concurrency tests share one database.
    _db["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test_genbot{TEST_DB_SUFFIX}.sqlite3")}
else:
    _db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    # A SELECT 1 before each request that reuses a connection: worth it only across flaky networks.
    _db["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=False)
    _db["TEST"] = {"NAME": f"test_{_db['NAME']}{TEST_DB_SUFFIX}"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis and queues -------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
RQ_QUEUES = {
    name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": timeout}
    for name, timeout in (("default", 300), ("images", 300), ("videos", 1200))
}

# --- auth, i18n, static -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Admin logins are throttled by django-axes: after ADMIN_LOGIN_FAILURE_LIMIT wrong passwords for one
# username from one address, that pair is refused (429) for ADMIN_LOGIN_COOLOFF_MINUTES, even with
# the right password. Its backend must come first; `manage.py axes_reset` lifts every lock.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("ADMIN_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Lockouts are still logged (WARNING); not verbose: no start-up banner in every process.
AXES_VERBOSE = False
# The sender's address as the YooKassa webhook sees it: behind TRUSTED_PROXY_COUNT proxies, from
# X-Forwarded-For (else every login would come from the proxy's address).
AXES_CLIENT_IP_CALLABLE = "payments.views.client_ip"

LANGUAGE_CODE = env("LANGUAGE_CODE", default="ru")
LANGUAGES = [("ru", "Русский"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", default="Europe/Moscow")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env("STATIC_ROOT", default=str(BASE_DIR / "var" / "static"))
MEDIA_URL = "media/"
MEDIA_ROOT = env("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- money ------------------------------------------------------------------------------------
# The largest single amount any service accepts, in kopecks (10 million roubles): anything above
# is a typo or an attack, never a real top-up or price.
MONEY_MAX_KOPECKS = env.int("MONEY_MAX_KOPECKS", default=10_000_000_00)
# Support staff (not superusers) may adjust a balance or refund at most this much per action.
SUPPORT_MONEY_LIMIT_KOPECKS = env.int("SUPPORT_MONEY_LIMIT_KOPECKS", default=5_000_00)
# Support staff move at most this in any 24 hours (adjustments and refunds together); beyond
# it, or beyond the per-action limit, the request waits for a superuser (billing.policy).
SUPPORT_DAILY_LIMIT_KOPECKS = env.int("SUPPORT_DAILY_LIMIT_KOPECKS", default=20_000_00)
# On PostgreSQL, ledger writes try billing.fastpath (one statement each) before the locked path
# in billing.services; off, every write takes the locked path (the reference behaviour).
BILLING_FAST_PATH = env.bool("BILLING_FAST_PATH", default=True)

# --- telegram ---------------------------------------------------------------------------------
BOT_TOKEN = env("BOT_TOKEN", default="")
# Any Bot API server: Telegram's, or the local sandbox. telebot's API_URL/FILE_URL derive from it.
TELEGRAM_API_URL = env("TELEGRAM_API_URL", default="https://api.telegram.org").rstrip("/")
# The token used against the local sandbox when BOT_TOKEN is empty (the sandbox accepts any).
BOT_DEMO_TOKEN = env("BOT_DEMO_TOKEN", default="123456789:sandbox-demo-token")
# Webhook mode (several machines): Telegram POSTs updates to this URL with the secret header.
TELEGRAM_WEBHOOK_URL = env("TELEGRAM_WEBHOOK_URL", default="")
TELEGRAM_WEBHOOK_SECRET = env("TELEGRAM_WEBHOOK_SECRET", default="")
TELEGRAM_POLL_TIMEOUT = env.int("TELEGRAM_POLL_TIMEOUT", default=20)
# Seconds the download of a file the customer sent (getFile, at most 20 MB) may take in all.
TELEGRAM_FILE_TIMEOUT = env.float("TELEGRAM_FILE_TIMEOUT", default=30.0)
# Handlers are short (a few queries, one outbox row); more threads mostly add GIL waits to each.
BOT_HANDLER_THREADS = env.int("BOT_HANDLER_THREADS", default=2)
# Outgoing flood limits (Telegram: ~1 message a second per chat, 30 a second overall).
TELEGRAM_SEND_PER_CHAT = env.float("TELEGRAM_SEND_PER_CHAT", default=1.0)
TELEGRAM_SEND_GLOBAL = env.float("TELEGRAM_SEND_GLOBAL", default=30.0)
TELEGRAM_SENDER_THREADS = env.int("TELEGRAM_SENDER_THREADS", default=16)
# Broadcast messages a second at most (within TELEGRAM_SEND_GLOBAL, so replies and results keep
# flowing during a broadcast; broadcast rows have their own pool of half as many sender threads).
BOT_BROADCAST_PER_SECOND = env.float("BOT_BROADCAST_PER_SECOND", default=20.0)
# Seconds after which a row claimed by a delivery loop is taken back (the loop died): a regular
# message goes back to pending, a broadcast's goes back only if its request had not gone out.
BOT_OUTBOX_STALE_CLAIM = env.int("BOT_OUTBOX_STALE_CLAIM", default=120)
# Incoming rate limits per customer: sliding windows in Redis (local ones when Redis is down).
# Generation requests and payments started per window, and updates of any kind per window.
BOT_RATE_LIMIT = env.int("BOT_RATE_LIMIT", default=10)
BOT_FLOOD_LIMIT = env.int("BOT_FLOOD_LIMIT", default=30)
BOT_RATE_WINDOW = env.int("BOT_RATE_WINDOW", default=60)
# Seconds at least between two progress edits (progress, place in line) in one chat; 0: no pause.
BOT_PROGRESS_EDIT_INTERVAL = env.float("BOT_PROGRESS_EDIT_INTERVAL", default=3.0)
BOT_SUPPORT_CONTACT = env("BOT_SUPPORT_CONTACT", default="@genbot_support")
# Seconds without a new photo after which an album (its photos arrive one update each) is quoted.
BOT_ALBUM_DEBOUNCE = env.float("BOT_ALBUM_DEBOUNCE", default=1.2)

# --- promotions -------------------------------------------------------------------------------
# Credited once per Telegram id on the first /start; 0 switches the welcome bonus off.
WELCOME_BONUS_KOPECKS = env.int("WELCOME_BONUS_KOPECKS", default=0)
# The referrer earns this when the referee's first top-up succeeds (0: nothing) ...
REFERRAL_SIGNUP_BONUS_KOPECKS = env.int("REFERRAL_SIGNUP_BONUS_KOPECKS", default=50_00)
# ... and this percent of each of the referee's top-ups in their first REFERRAL_MONTHS months.
REFERRAL_PERCENT = env.int("REFERRAL_PERCENT", default=10)
REFERRAL_MONTHS = env.int("REFERRAL_MONTHS", default=6)
# Wrong promo codes a customer may type in PROMO_CODE_ATTEMPT_WINDOW seconds before the bot stops
# checking them (brute force); a right one does not count.
PROMO_CODE_ATTEMPTS = env.int("PROMO_CODE_ATTEMPTS", default=5)
PROMO_CODE_ATTEMPT_WINDOW = env.int("PROMO_CODE_ATTEMPT_WINDOW", default=15 * 60)

# --- payments ---------------------------------------------------------------------------------
# Without a shop id the product runs offline against the local YooKassa stub
# (`manage.py yookassa_stub --port 8082`) with a demo shop; with one, against the real API.
# The demo shop's credentials are written here only: the stub serves the configured shop.
YOOKASSA_USES_STUB = not env("YOOKASSA_SHOP_ID", default="")
YOOKASSA_SHOP_ID = env("YOOKASSA_SHOP_ID", default="") or "100500"
YOOKASSA_SECRET_KEY = env("YOOKASSA_SECRET_KEY", default="test_genbot_demo_secret" if YOOKASSA_USES_STUB else "")
YOOKASSA_API_URL = env(
    "YOOKASSA_API_URL",
    default="http://127.0.0.1:8082/v3" if YOOKASSA_USES_STUB else "https://api.yookassa.ru/v3",
).rstrip("/")
# Where the customer lands after paying (the bot's t.me link in production).
YOOKASSA_RETURN_URL = env("YOOKASSA_RETURN_URL", default="http://127.0.0.1:8000/" if YOOKASSA_USES_STUB else "https://t.me/")
# Senders allowed to call /webhook/yookassa: YooKassa's published ranges; the stub posts from
# 127.0.0.1, so the offline default adds loopback only while the stub is in use.
YOOKASSA_ALLOWED_IPS = env.list(
    "YOOKASSA_ALLOWED_IPS",
    default=[
        "185.71.76.0/27", "185.71.77.0/27", "77.75.153.0/25", "77.75.156.11", "77.75.156.35",
        "77.75.154.128/25", "2a02:5180::/32",
    ] + (["127.0.0.1", "::1"] if YOOKASSA_USES_STUB else []),
)
# How many reverse proxies in front of the web process append to X-Forwarded-For (0: none,
# REMOTE_ADDR is the sender).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# 54-FZ receipts sent with each YooKassa payment.
YOOKASSA_RECEIPTS = env.bool("YOOKASSA_RECEIPTS", default=False)
YOOKASSA_RECEIPT_VAT_CODE = env.int("YOOKASSA_RECEIPT_VAT_CODE", default=1)
YOOKASSA_RECEIPT_PAYMENT_MODE = env("YOOKASSA_RECEIPT_PAYMENT_MODE", default="full_prepayment")
YOOKASSA_RECEIPT_PAYMENT_SUBJECT = env("YOOKASSA_RECEIPT_PAYMENT_SUBJECT", default="service")
YOOKASSA_RECEIPT_EMAIL = env("YOOKASSA_RECEIPT_EMAIL", default="")
# Where the stub sends its notifications (offline runs).
YOOKASSA_STUB_WEBHOOK_URL = env("YOOKASSA_STUB_WEBHOOK_URL", default="http://127.0.0.1:8000/webhook/yookassa")
# The top-up buttons come from promotions' TopUpPackage rows (staff edit them, with a bonus each);
# these amounts are the buttons only when every package is switched off.
TOPUP_PRESETS_KOPECKS = env.list("TOPUP_PRESETS_KOPECKS", cast=int, default=[10_000, 30_000, 50_000, 100_000])
TOPUP_MIN_KOPECKS = env.int("TOPUP_MIN_KOPECKS", default=10_000)
TOPUP_MAX_KOPECKS = env.int("TOPUP_MAX_KOPECKS", default=10_000_000)
# Kopecks credited per Telegram Star; an invoice older than the TTL is refused at pre-checkout.
STARS_RATE_KOPECKS = env.int("STARS_RATE_KOPECKS", default=100)
STARS_INVOICE_TTL_SECONDS = env.int("STARS_INVOICE_TTL_SECONDS", default=3600)
# `sync_payments` asks the API about payments pending longer than this.
PAYMENTS_SYNC_AFTER_MINUTES = env.int("PAYMENTS_SYNC_AFTER_MINUTES", default=5)

# --- AI providers -----------------------------------------------------------------------------
NANO_BANANA_API_KEY = env("NANO_BANANA_API_KEY", default="")
KLING_API_KEY = env("KLING_API_KEY", default="")
# auto: a real provider when its key is set, the fake otherwise; fake: always the fake; real:
# always the real ones (a missing key fails the job).
AI_PROVIDER = env("AI_PROVIDER", default="auto")
GEMINI_API_URL = env("GEMINI_API_URL", default="https://generativelanguage.googleapis.com").rstrip("/")
GEMINI_MODEL = env("GEMINI_MODEL", default="gemini-2.5-flash-image")
KLING_API_URL = env("KLING_API_URL", default="https://api-singapore.klingai.com").rstrip("/")
KLING_MODEL = env("KLING_MODEL", default="kling-v2-1")
# Seconds between two status polls of a Kling task at most (the first polls come sooner, backing
# off from KLING_FIRST_POLL), and for the whole task at most.
KLING_POLL_INTERVAL = env.float("KLING_POLL_INTERVAL", default=10.0)
KLING_FIRST_POLL = env.float("KLING_FIRST_POLL", default=3.0)
KLING_TASK_TIMEOUT = env.int("KLING_TASK_TIMEOUT", default=900)
# The prefix of the external_task_id genbot gives each Kling task ("<prefix>-<job id>"): one per
# job, so a worker that died before recording its task finds it instead of paying for another.
# Installations sharing one Kling account need different prefixes.
KLING_EXTERNAL_ID_PREFIX = env("KLING_EXTERNAL_ID_PREFIX", default="genbot")
# The public https://host genbot's web process answers on; Kling POSTs task status changes to
# <PUBLIC_BASE_URL>/webhook/kling/<signed job token>. Empty: no callbacks, polls only.
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="").rstrip("/")
# With callbacks a task's end arrives by callback; its polls are only the safety net for a lost
# one, this many seconds apart (KLING_FIRST_POLL and KLING_POLL_INTERVAL apply without callbacks).
KLING_CALLBACK_POLL_INTERVAL = env.float("KLING_CALLBACK_POLL_INTERVAL", default=60.0)
# Provider quotas, shared by every worker on every machine through Redis: tasks (Kling) and
# calls (Gemini) running at once, and Gemini calls per minute (0: no limit). A job over the
# quota waits its turn, in order; JOB_QUEUE_TIMEOUT seconds after it was submitted a job that
# never got a slot is refunded.
KLING_MAX_CONCURRENT_TASKS = env.int("KLING_MAX_CONCURRENT_TASKS", default=5)
GEMINI_MAX_CONCURRENT = env.int("GEMINI_MAX_CONCURRENT", default=10)
GEMINI_REQUESTS_PER_MINUTE = env.int("GEMINI_REQUESTS_PER_MINUTE", default=0)
JOB_QUEUE_TIMEOUT = env.int("JOB_QUEUE_TIMEOUT", default=30 * 60)
# Seconds a slot stays leased without being renewed (a worker's heartbeat or a task's poll renews
# it): the slot of a killed worker comes back after this long.
JOB_QUOTA_LEASE = env.int("JOB_QUOTA_LEASE", default=180)
# Provider calls a job may start (its worker died mid-call: it is tried again) before it is
# failed and refunded.
JOB_MAX_ATTEMPTS = env.int("JOB_MAX_ATTEMPTS", default=2)
# A result video: largest download in bytes, and seconds the whole download may take.
VIDEO_MAX_BYTES = env.int("VIDEO_MAX_BYTES", default=200 * 1024 * 1024)
VIDEO_DOWNLOAD_TIMEOUT = env.float("VIDEO_DOWNLOAD_TIMEOUT", default=300.0)
# Seconds one HTTP request to a provider may take.
AI_HTTP_TIMEOUT = env.float("AI_HTTP_TIMEOUT", default=120.0)
# Retries of retryable provider errors (429, 5xx, time-outs): attempts in all, and the backoff
# base in seconds (attempt n waits base * 2**n, with full jitter, at most AI_RETRY_MAX_DELAY).
AI_RETRY_ATTEMPTS = env.int("AI_RETRY_ATTEMPTS", default=4)
AI_RETRY_BASE_DELAY = env.float("AI_RETRY_BASE_DELAY", default=1.0)
AI_RETRY_MAX_DELAY = env.float("AI_RETRY_MAX_DELAY", default=30.0)
# The fake provider: seconds per generation and the share of generations that fail (0-1).
FAKE_PROVIDER_LATENCY = env.float("FAKE_PROVIDER_LATENCY", default=2.0)
FAKE_PROVIDER_FAILURE_RATE = env.float("FAKE_PROVIDER_FAILURE_RATE", default=0.0)

# --- jobs -------------------------------------------------------------------------------------
# Active (pending or processing) jobs one customer may have at once.
MAX_ACTIVE_JOBS_PER_CUSTOMER = env.int("MAX_ACTIVE_JOBS_PER_CUSTOMER", default=3)
# A processing job whose heartbeat is older than this many seconds lost its worker: it is tried
# again (JOB_MAX_ATTEMPTS), then failed and refunded; workers beat every JOB_HEARTBEAT_INTERVAL
# seconds (and report progress and renew their provider slots with the beat).
JOB_HEARTBEAT_TIMEOUT = env.int("JOB_HEARTBEAT_TIMEOUT", default=120)
JOB_HEARTBEAT_INTERVAL = env.float("JOB_HEARTBEAT_INTERVAL", default=5.0)
# A pending job older than this many seconds with no live queue message is enqueued again, and a
# scheduled poll or try overdue by this many seconds is run at once (a stalled RQ scheduler).
JOB_REQUEUE_AFTER = env.int("JOB_REQUEUE_AFTER", default=60)
# Results (and input media) are deleted this many days after the job finished.
RESULT_TTL_DAYS = env.int("RESULT_TTL_DAYS", default=7)
# Without Redis, jobs run in a thread pool of this size inside the process.
JOB_FALLBACK_THREADS = env.int("JOB_FALLBACK_THREADS", default=4)
# Seconds a Redis health answer is trusted, and how long a ping may take.
JOB_REDIS_CHECK_INTERVAL = env.float("JOB_REDIS_CHECK_INTERVAL", default=10.0)
JOB_REDIS_TIMEOUT = env.float("JOB_REDIS_TIMEOUT", default=0.5)
# Input media: largest upload in bytes, most pixels (width * height, checked before decoding),
# smallest side in pixels for image-to-video.
JOB_MAX_INPUT_BYTES = env.int("JOB_MAX_INPUT_BYTES", default=10 * 1024 * 1024)
JOB_MAX_INPUT_PIXELS = env.int("JOB_MAX_INPUT_PIXELS", default=40_000_000)
JOB_MIN_VIDEO_IMAGE_SIDE = env.int("JOB_MIN_VIDEO_IMAGE_SIDE", default=300)
JOB_MAX_PROMPT_LENGTH = env.int("JOB_MAX_PROMPT_LENGTH", default=2500)
# The first prices of the catalogue's default offers, in kopecks (Nano Banana's picture and edit,
# Kling 2.5 Turbo's second of video), read once by the migration that seeds the catalogue
# (jobs 0006); after it, staff edit every offer's prices in the admin.
PRICE_IMAGE = env.int("PRICE_IMAGE", default=1500)
PRICE_IMAGE_EDIT = env.int("PRICE_IMAGE_EDIT", default=2000)
PRICE_VIDEO_STD_PER_SECOND = env.int("PRICE_VIDEO_STD_PER_SECOND", default=1000)
PRICE_VIDEO_PRO_PER_SECOND = env.int("PRICE_VIDEO_PRO_PER_SECOND", default=1800)
# Results and input media go to Django's default storage: local disk under MEDIA_ROOT, or an S3
# bucket (any S3-compatible service) through django-storages when JOB_S3_BUCKET is set.
JOB_S3_BUCKET = env("JOB_S3_BUCKET", default="")
if JOB_S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": JOB_S3_BUCKET,
            "endpoint_url": env("JOB_S3_ENDPOINT_URL", default="") or None,
            "region_name": env("JOB_S3_REGION", default="") or None,
            "access_key": env("JOB_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env("JOB_S3_SECRET_ACCESS_KEY", default="") or None,
            "location": env("JOB_S3_PREFIX", default="media"),
            "default_acl": None,
            "querystring_expire": env.int("JOB_S3_URL_EXPIRE", default=3600),
        },
    }
# The RQ worker class for every worker (and the benchmark): jobs.worker.JobWorker runs jobs in the
# worker process itself (no fork per job) and gives each job working database connections.
RQ = {"WORKER_CLASS": env("RQ_WORKER_CLASS", default="jobs.worker.JobWorker")}
# Worker processes of one `rqworker-pool` (bin/run, genbot-worker@.service, the benchmark).
JOB_WORKERS = env.int("JOB_WORKERS", default=4)
# Seconds between a worker's maintenance passes (RQ's default is 600): registry clean-up, and a
# new scheduler process (enqueue_in) when the one holding the lock died, e.g. with its Redis.
JOB_WORKER_MAINTENANCE_INTERVAL = env.int("JOB_WORKER_MAINTENANCE_INTERVAL", default=30)
# Repeating tasks run by `manage.py run_periodic`: (dotted path, queue, seconds or cron string).
# Dotted paths, so jobs imports no other app; an entry that does not import is logged and skipped.
PERIODIC_TASKS = [
    ("jobs.tasks.reap_stuck_jobs_task", "default", 60),
    ("jobs.tasks.cleanup_results_task", "default", "17 3 * * *"),
    ("payments.tasks.sync_pending_payments", "default", 300),
]

# --- security (production: DEBUG off; see deploy/genbot.env.example) ------------------------------
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto, trust it for request.is_secure().
if env.bool("BEHIND_HTTPS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Load balancers probe these over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# /metrics answers only with "Authorization: Bearer <METRICS_TOKEN>" when it is set; without it
# only to this machine (REMOTE_ADDR loopback, no proxy's forwarding header) unless DEBUG.
METRICS_TOKEN = env("METRICS_TOKEN", default="")

# --- backups ----------------------------------------------------------------------------------
BACKUP_DIR = env("BACKUP_DIR", default=str(BASE_DIR / "var" / "backups"))
BACKUP_KEEP = env.int("BACKUP_KEEP", default=14)

# --- errors: Sentry when SENTRY_DSN is set -----------------------------------------------------
SENTRY_DSN = env("SENTRY_DSN", default="")
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.rq import RqIntegration

    from genbot.redaction import sentry_before_send

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        integrations=[DjangoIntegration(), RqIntegration()],
        environment=env("SENTRY_ENVIRONMENT", default="production"),
        release=env("SENTRY_RELEASE", default=None),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
        # No personal data: no user ids, IPs, cookies or request bodies (customers' prompts).
        send_default_pii=False,
        max_request_body_size="never",
        # Secrets (the bot token is in telebot's URLs) are scrubbed from everything sent.
        before_send=sentry_before_send,
        before_send_transaction=sentry_before_send,
        before_send_log=sentry_before_send,
    )

# --- logging ----------------------------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
# Logs go to stdout; with LOG_FILE also to that file, rotated at LOG_FILE_MAX_BYTES (5 kept).
LOG_FILE = env("LOG_FILE", default="")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # redact: secrets (the bot token in telebot's URLs and tracebacks) never reach a log line.
    "filters": {"context": {"()": "genbot.logcontext.ContextFilter"}, "redact": {"()": "genbot.redaction.RedactingFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(context)s] %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["context", "redact"]},
        **(
            {
                "file": {
                    "class": "logging.handlers.RotatingFileHandler", "filename": LOG_FILE, "formatter": "plain",
                    "filters": ["context", "redact"], "maxBytes": env.int("LOG_FILE_MAX_BYTES", default=20 * 1024 * 1024),
                    "backupCount": 5, "encoding": "utf-8",
                }
            }
            if LOG_FILE else {}
        ),
    },
    "root": {"handlers": ["console", *(["file"] if LOG_FILE else [])], "level": LOG_LEVEL},
}
