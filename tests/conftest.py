"""Fixtures: an app per test on SQLite (in memory) or Postgres, clients logged in per role,
and a live server (gunicorn + RQ worker + Postgres + Redis + a real SMTP server) for the
browser and socket tests."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import config
from autodoctor import clock, create_app
from autodoctor.extensions import db
from autodoctor.services import plans
from tests.factories import PASSWORD, UserFactory

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
IN_CI = os.environ.get("CI") == "true"


def _pg_available():
    try:
        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


def require_services():
    """Skip locally when Postgres/Redis are down; in CI they must be there."""
    import redis

    ok = _pg_available()
    try:
        redis.Redis.from_url(REDIS_TEST_URL).ping()
    except Exception:
        ok = False
    if not ok:
        if IN_CI:
            pytest.fail("Postgres and Redis must be running in CI (make test starts them).")
        pytest.skip("Postgres/Redis not running")


def create_pg_database(name):
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(name):
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _fast_password_hashing(monkeypatch):
    """Still Argon2id, at the cheapest cost: the production cost (~0.25 s a hash) would
    dominate the suite. test_auth checks the real parameters separately."""
    from argon2 import PasswordHasher

    from autodoctor.services import accounts

    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(accounts, "_hasher", fast)
    monkeypatch.setattr(accounts, "_DUMMY_HASH", fast.hash("not-a-real-password"))


@pytest.fixture(autouse=True)
def _reset_clock():
    clock.reset()
    yield
    clock.reset()


def _make_app(tmp_path, **overrides):
    class Cfg(config.TestConfig):
        UPLOAD_DIR = str(tmp_path / "uploads")

    for key, value in overrides.items():
        setattr(Cfg, key, value)
    app = create_app(Cfg)

    @app.before_request
    def _forget_cached_user():
        # Tests keep one app context open and Flask-Login caches the user in flask.g on it:
        # each test-client request must be whoever its own cookie says.
        from flask import g

        g.pop("_login_user", None)

    return app


@pytest.fixture
def app(tmp_path):
    app = _make_app(tmp_path)
    # A request context (not only an app context) so services can build URLs as in a view.
    with app.test_request_context():
        db.create_all()
        plans.seed_plans()
        db.session.commit()
        yield app
        db.session.remove()
        db.drop_all()


@pytest.fixture(scope="session")
def pg_url():
    require_services()
    name = f"autodoctor_test_{os.getpid()}"
    url = create_pg_database(name)
    engine = sa.create_engine(url)
    from autodoctor import models  # noqa: F401

    db.metadata.create_all(engine)
    engine.dispose()
    yield url
    drop_pg_database(name)


@pytest.fixture
def pg_app(tmp_path, pg_url):
    """An app on a real Postgres database, emptied after each test."""
    app = _make_app(tmp_path, SQLALCHEMY_DATABASE_URI=pg_url,
                    SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 60, "max_overflow": 20})
    with app.test_request_context():
        plans.seed_plans()
        db.session.commit()
        yield app
        db.session.remove()
        tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.engine.dispose()


@pytest.fixture
def smtp_server(app):
    """A real SMTP server (aiosmtpd) the app delivers to."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message as MessageHandler

    mailbox = []

    class Collect(MessageHandler):
        def handle_message(self, message):
            mailbox.append(message)

    port = free_port()
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False)
    yield mailbox
    controller.stop()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def login(app):
    """login(user) -> a test client logged in as that user."""

    def _login(user):
        c = app.test_client()
        response = c.post("/login", data={"email": user.email, "password": PASSWORD})
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
        return c

    return _login


@pytest.fixture
def users(app):
    """The cast of the access matrix: two customers, two mechanics, an admin."""
    cast = {
        "customer_a": UserFactory("customer", "a@example.com"),
        "customer_b": UserFactory("customer", "b@example.com"),
        "mechanic_a": UserFactory("mechanic", "ma@example.com"),
        "mechanic_b": UserFactory("mechanic", "mb@example.com"),
        "admin": UserFactory("admin", "admin@example.com"),
    }
    db.session.commit()
    return cast


class LiveServer:
    def __init__(self, url, database_url, mailbox, env):
        self.url = url
        self.database_url = database_url
        self.mailbox = mailbox
        self.env = env

    def move_clock(self, seconds):
        """Set the web and worker processes' clock `seconds` ahead of the real time (0: back to
        real time; tests that move it put it back when they finish)."""
        Path(self.env["CLOCK_OFFSET_FILE"]).write_text(str(seconds))

    def wait_for_mail(self, to, subject_contains, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for message in list(self.mailbox):
                if to in message["To"] and subject_contains in message["Subject"]:
                    return message
            time.sleep(0.2)
        raise AssertionError(f"no e-mail to {to} about {subject_contains!r}; got "
                             f"{[(m['To'], m['Subject']) for m in self.mailbox]}")


LIVEKIT_TEST_KEY = "APIlivetestkey"
LIVEKIT_TEST_SECRET = "livekit-test-secret-that-is-long-enough-0123456789"


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """gunicorn (gevent, 2 workers) + `python worker.py` (RQ with scheduler + sweep), on a
    migrated Postgres database, Redis pub/sub and a real SMTP server (aiosmtpd)."""
    require_services()
    import redis
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message as MessageHandler

    mailbox = []

    class Collect(MessageHandler):
        def handle_message(self, message):
            mailbox.append(message)

    smtp_port = free_port()
    smtp = Controller(Collect(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    name = f"autodoctor_live_{os.getpid()}"
    database_url = create_pg_database(name)
    redis.Redis.from_url(REDIS_TEST_URL).flushdb()
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": REDIS_TEST_URL, "FLASK_APP": "wsgi",
           "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port), "SMTP_STARTTLS": "0",
           "STRIPE_SECRET_KEY": "", "STRIPE_WEBHOOK_SECRET": "whsec_live_test", "SECRET_KEY": "live-test",
           "PUBLIC_URL": f"http://127.0.0.1:{port}", "PORT": str(port), "WEB_CONCURRENCY": "2",
           "SWEEP_INTERVAL_SECONDS": "2", "UPLOAD_DIR": str(tmp_path_factory.mktemp("uploads")),
           "LOGIN_RATE_LIMIT": "1000 per minute", "S3_BUCKET": "", "PRESENCE_TIMEOUT_SECONDS": "6",
           "CLOCK_OFFSET_FILE": str(tmp_path_factory.mktemp("clock") / "offset"),
           # No LiveKit server runs here: tokens are issued and the pre-join screen works; joining cannot.
           "LIVEKIT_URL": "ws://127.0.0.1:9", "LIVEKIT_API_KEY": LIVEKIT_TEST_KEY,
           "LIVEKIT_API_SECRET": LIVEKIT_TEST_SECRET}
    flask = str(ROOT / ".venv" / "bin" / "flask") if (ROOT / ".venv/bin/flask").exists() else "flask"
    subprocess.run([flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([flask, "seed-demo"], cwd=ROOT, env=env, check=True, capture_output=True)
    logs = tmp_path_factory.mktemp("logs")
    web = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT,
                           env=env, stdout=open(logs / "web.log", "w"), stderr=subprocess.STDOUT)
    worker = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env,
                              stdout=open(logs / "worker.log", "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120  # a loaded machine can take a while to boot two gevent workers
    import urllib.request

    def stop():
        for proc in (web, worker):
            proc.terminate()
        for proc in (web, worker):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        smtp.stop()
        drop_pg_database(name)

    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1)
            break
        except OSError:
            if time.time() > deadline or web.poll() is not None:
                stop()
                raise RuntimeError((logs / "web.log").read_text()[-3000:]) from None
            time.sleep(0.2)
    server = LiveServer(url, database_url, mailbox, env)
    server.logs = logs
    yield server
    stop()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    if not Path("/usr/bin/chromium").exists():
        if IN_CI:
            pytest.fail("/usr/bin/chromium is missing (make test installs it)")
        pytest.skip("chromium not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()
