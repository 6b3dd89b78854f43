"""Settings read from the environment. With nothing set the app runs embedded:
SQLite file, in-process broker and jobs, built-in test checkout, e-mail outbox."""
import os
from pathlib import Path

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent
load_dotenv(BASE_DIR / ".env")


def _int(name, default):
    return int(os.environ.get(name, default))


def _database_url():
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres://"):  # Heroku-style URL; SQLAlchemy wants the driver named
        url = "postgresql+psycopg://" + url[len("postgres://"):]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url or f"sqlite:///{BASE_DIR / 'var' / 'autodoctor.sqlite3'}"


def _engine_options(url):
    options = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        # A gevent worker runs many requests and sockets at once. SQLAlchemy's default pool
        # (5 kept + 10 overflow) opened and closed an overflow connection for every burst
        # above 5 — a new Postgres backend each time. Same ceiling of 15, all kept open.
        options.update(pool_size=15, max_overflow=0)
    return options


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-not-secret-change-me")
    SQLALCHEMY_DATABASE_URI = _database_url()
    SQLALCHEMY_ENGINE_OPTIONS = _engine_options(SQLALCHEMY_DATABASE_URI)
    REDIS_URL = os.environ.get("REDIS_URL", "")
    # Run jobs and the sweep inside the web process even when Redis is set (single-dyno mode).
    SINGLE_DYNO = os.environ.get("SINGLE_DYNO", "") == "1"
    SWEEP_INTERVAL_SECONDS = _int("SWEEP_INTERVAL_SECONDS", 10)

    STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
    STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "whsec_embedded_test_checkout")
    STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")  # e.g. a stripe-mock; empty = api.stripe.com
    PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://127.0.0.1:5000")

    SMTP_HOST = os.environ.get("SMTP_HOST", "")
    SMTP_PORT = _int("SMTP_PORT", 587)
    SMTP_USERNAME = os.environ.get("SMTP_USERNAME", "")
    SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD", "")
    SMTP_STARTTLS = os.environ.get("SMTP_STARTTLS", "1") == "1"
    MAIL_FROM = os.environ.get("MAIL_FROM", "AutoDoctor <no-reply@autodoctor.example>")
    SUPPORT_EMAIL = os.environ.get("SUPPORT_EMAIL", "support@autodoctor.example")  # shown to suspended people

    UPLOAD_DIR = os.environ.get("UPLOAD_DIR", str(BASE_DIR / "var" / "uploads"))
    # S3-compatible storage replaces the local disk when a bucket is set (credentials from the
    # usual AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY variables).
    S3_BUCKET = os.environ.get("S3_BUCKET", "")
    S3_ENDPOINT_URL = os.environ.get("S3_ENDPOINT_URL", "")  # empty = AWS itself
    S3_REGION = os.environ.get("S3_REGION", "us-east-1")

    # LiveKit video (video15 and diagnostic plans). Without these the room says video is not set up.
    LIVEKIT_URL = os.environ.get("LIVEKIT_URL", "")  # wss://<project>.livekit.cloud
    LIVEKIT_API_KEY = os.environ.get("LIVEKIT_API_KEY", "")
    LIVEKIT_API_SECRET = os.environ.get("LIVEKIT_API_SECRET", "")
    LIVEKIT_TOKEN_TTL_SECONDS = _int("LIVEKIT_TOKEN_TTL_SECONDS", 600)
    # Werkzeug refuses bodies larger than this before any view runs (largest allowed file + form).
    MAX_CONTENT_LENGTH = 101 * 1024 * 1024

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("COOKIE_SECURE", "0") == "1"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    WTF_CSRF_TIME_LIMIT = None
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "5 per minute")
    RATELIMIT_ENABLED = True

    # Flask-Compress: never touch text/event-stream (not in the list) so streams are not buffered.
    COMPRESS_MIMETYPES = ["text/html", "text/css", "application/javascript", "text/javascript",
                          "application/json", "image/svg+xml"]
    COMPRESS_MIN_SIZE = 500
    # Static files are streamed responses, and Flask-Compress leaves gzip out of its streaming
    # algorithms by default: a client that offers only gzip got htmx (51 KB) uncompressed.
    # No zstd: at Flask-Compress's level 3 every file came out larger than gzip; Brotli at 5
    # is smaller than gzip (htmx 16.2 vs 16.6 KB) and still cheap.
    COMPRESS_ALGORITHM = ["br", "gzip", "deflate"]
    COMPRESS_ALGORITHM_STREAMING = COMPRESS_ALGORITHM
    COMPRESS_BR_LEVEL = 5
    SEND_FILE_MAX_AGE_DEFAULT = 60 * 60 * 24 * 365  # static files carry their version in the name

    # flask-sock: ping every 25 s so the router (55 s idle limit) keeps the socket open.
    SOCK_SERVER_OPTIONS = {"ping_interval": 25}
    SSE_KEEPALIVE_SECONDS = 15
    # A mechanic with "Taking requests" on is online while their dashboard stream has been seen
    # within this many seconds (the stream's keepalive beats at least three times a window).
    PRESENCE_TIMEOUT_SECONDS = _int("PRESENCE_TIMEOUT_SECONDS", 60)


class ProductionConfig(Config):
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret"
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    SQLALCHEMY_ENGINE_OPTIONS = _engine_options(SQLALCHEMY_DATABASE_URI)
    REDIS_URL = ""
    STRIPE_SECRET_KEY = ""
    STRIPE_WEBHOOK_SECRET = "whsec_test_secret"
    SMTP_HOST = ""
    S3_BUCKET = ""
    LIVEKIT_URL = LIVEKIT_API_KEY = LIVEKIT_API_SECRET = ""
    WTF_CSRF_ENABLED = False
    RATELIMIT_ENABLED = True
    SWEEP_INTERVAL_SECONDS = 0  # tests call the sweep themselves
    PUBLIC_URL = "http://localhost"
