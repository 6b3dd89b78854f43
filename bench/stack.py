"""The real stack for the benchmark: a fresh Postgres database, a flushed Redis db, gunicorn
(gunicorn.conf.py, gevent) + `python worker.py`, and the bare flask-sock echo app, all bound to
loopback. Everything is started as child processes and stopped (then the database dropped)
by Stack.stop()."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "9"))
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
# LiveKit settings so the video plans' room page loads the LiveKit bundle, as in production.
# Nothing connects to this URL during the run (the same dummy values as tests/conftest.py).
LIVEKIT_ENV = {"LIVEKIT_URL": "ws://127.0.0.1:9", "LIVEKIT_API_KEY": "APIlivetestkey",
               "LIVEKIT_API_SECRET": "livekit-test-secret-that-is-long-enough-0123456789"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _admin_engine():
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def create_database(name):
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_database(name):
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def db_sessions(name):
    """Connections ever opened to the database (pg_stat_database.sessions, PostgreSQL 14+)."""
    engine = _admin_engine()
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT sessions FROM pg_stat_database WHERE datname = :n"),
                                {"n": name}).scalar() or 0
    except sa.exc.SQLAlchemyError:
        return 0
    finally:
        engine.dispose()


def drop_stale_databases():
    """Drop databases left by bench runs that died without cleaning up (their pid is gone)."""
    engine = _admin_engine()
    try:
        with engine.connect() as conn:
            names = conn.execute(sa.text("SELECT datname FROM pg_database WHERE datname LIKE 'autodoctor_bench_%'"))
            for (name,) in names.all():
                pid = name.rsplit("_", 1)[-1]
                if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def flush_redis():
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()


def _wait_http(url, proc, log_path, timeout=30):
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                tail = Path(log_path).read_text()[-3000:] if Path(log_path).exists() else ""
                raise RuntimeError(f"{url} did not come up:\n{tail}") from None
            time.sleep(0.2)


class Stack:
    def __init__(self, out_dir, web_concurrency=2):
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.db_name = f"autodoctor_bench_{os.getpid()}"
        self.port = free_port()
        self.echo_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.echo_url = f"http://127.0.0.1:{self.echo_port}"
        self.web_concurrency = web_concurrency
        self.procs = {}
        self.database_url = None
        self.env = None

    # -- lifecycle -------------------------------------------------------------------
    def prepare(self):
        """Database, migrations, demo seed. Returns the env every process runs with."""
        drop_stale_databases()
        self.database_url = create_database(self.db_name)
        flush_redis()
        uploads = self.out / "uploads"
        clear_dir(uploads)
        uploads.mkdir(exist_ok=True)
        self.env = {**os.environ, "DATABASE_URL": self.database_url, "REDIS_URL": REDIS_URL, "FLASK_APP": "wsgi",
                    "SECRET_KEY": "bench-secret-not-for-production", "STRIPE_SECRET_KEY": "",
                    "STRIPE_WEBHOOK_SECRET": "whsec_bench", "PUBLIC_URL": self.url, "PORT": str(self.port),
                    "WEB_CONCURRENCY": str(self.web_concurrency), "SWEEP_INTERVAL_SECONDS": "10",
                    "UPLOAD_DIR": str(uploads), "SMTP_HOST": "", "SINGLE_DYNO": "0", "ACCESS_LOG": "0",
                    "LOGIN_RATE_LIMIT": "100000 per minute", "FLASK_ENV": "development", "PYTHONUNBUFFERED": "1",
                    **LIVEKIT_ENV}
        flask = str(ROOT / ".venv" / "bin" / "flask")
        for args in (["db", "upgrade"], ["seed-demo"]):
            result = subprocess.run([flask, *args], cwd=ROOT, env=self.env, capture_output=True, text=True)
            if result.returncode:
                raise RuntimeError(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return self.env

    def start_servers(self):
        self._spawn("web", [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                            "--bind", f"127.0.0.1:{self.port}",
                            os.environ.get("BENCH_WSGI_APP", "wsgi:app")],  # another app module: experiments
                    self.env)
        self._spawn("worker", [sys.executable, "worker.py"], self.env)
        echo_env = {**self.env, "PORT": str(self.echo_port)}
        self._spawn("echo", [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                             "--bind", f"127.0.0.1:{self.echo_port}", "bench.echo_app:app"], echo_env)
        _wait_http(self.url + "/healthz", self.procs["web"], self.out / "web.log")
        _wait_http(self.echo_url + "/healthz", self.procs["echo"], self.out / "echo.log")

    def _spawn(self, name, argv, env):
        log = open(self.out / f"{name}.log", "w")
        self.procs[name] = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def worker_pids(self, name="web"):
        """The gunicorn worker processes of the named master."""
        proc = self.procs.get(name)
        if proc is None:
            return []
        try:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        except OSError:
            return []
        return [int(pid) for pid in children]

    def stop(self):
        for _name, proc in self.procs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc in self.procs.items():
            try:
                proc.wait(25)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()
        if self.database_url:
            try:
                drop_database(self.db_name)
            finally:
                self.database_url = None
        try:
            flush_redis()
        except Exception:  # Redis gone: nothing left to clean
            pass
        clear_dir(self.out / "uploads")  # the files shared during the run (about a GB of videos)


def clear_dir(path):
    import shutil

    shutil.rmtree(path, ignore_errors=True)


# -- CPU accounting ----------------------------------------------------------------------
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def pids_by_comm(names):
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm in names:
                found.append(int(entry.name))
    return found


def rss_kb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_peak_kb(pid):
    """VmHWM: the process's peak resident set since it started or since reset_rss_peak()."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_rss_peak(pid):
    """Start VmHWM again from the current RSS (Linux: write 5 to /proc/<pid>/clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class CommitProbe:
    """A thread that inserts one row and commits, every `interval` s, on its own connection to
    the bench database: how long Postgres takes to make a commit durable (WAL fdatasync) while
    something else writes to the same disk."""

    def __init__(self, database_url, interval=0.025):
        self.dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
        self.interval = interval
        self.samples = []

    def _run(self):
        import psycopg

        with psycopg.connect(self.dsn) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS bench_commit_probe (id bigserial PRIMARY KEY, at float8)")
            conn.commit()
            while not self._stop.wait(self.interval):
                t = time.monotonic()
                conn.execute("INSERT INTO bench_commit_probe (at) VALUES (%s)", (t,))
                conn.commit()
                self.samples.append(time.monotonic() - t)

    def start(self):
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="commit-probe", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        return self.samples


class RssSampler:
    """Samples VmRSS of some processes every `interval` s in a thread; keeps the peak and the
    series (seconds since start, KB per pid)."""

    def __init__(self, pids, interval=0.05):
        self.pids = list(pids)
        self.interval = interval
        self.peak = dict.fromkeys(self.pids, 0)
        self.series = []

    def _watch(self):
        t0 = time.monotonic()
        while not self._stop.wait(self.interval):
            row = {pid: rss_kb(pid) for pid in self.pids}
            for pid, kb in row.items():
                self.peak[pid] = max(self.peak[pid], kb)
            self.series.append((round(time.monotonic() - t0, 3), row))

    def start(self):
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        return self.peak


class CpuMeter:
    """CPU seconds used by groups of processes between start() and stop(), and the busiest
    second of everything else on the machine (sampled by a thread while the meter runs)."""

    OTHERS = "everything else on the machine"

    def __init__(self, groups):
        self.groups = groups  # name -> callable returning pids
        self._thread = None

    def _sample(self):
        return {name: {pid: cpu_ticks(pid) for pid in pids()} for name, pids in self.groups.items()}

    @staticmethod
    def _machine_busy():
        """Busy ticks of the whole machine (all cores) from /proc/stat."""
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
        return user + nice + system + irq + softirq + steal

    def _usage(self, s0, s1, busy0, busy1):
        usage = {}
        for name, pids in s1.items():
            before = s0.get(name, {})
            usage[name] = sum(t - before.get(pid, 0) for pid, t in pids.items()) / CLK_TCK
        usage[self.OTHERS] = max(0.0, (busy1 - busy0) / CLK_TCK - sum(usage.values()))
        return usage

    def _watch(self):
        prev = (time.monotonic(), self._sample(), self._machine_busy())
        while not self._stop.wait(1.0):
            now = (time.monotonic(), self._sample(), self._machine_busy())
            others = self._usage(prev[1], now[1], prev[2], now[2])[self.OTHERS] / (now[0] - prev[0])
            self.peak_others = max(self.peak_others, others)
            prev = now

    def start(self):
        import threading

        self._t0 = time.monotonic()
        self._busy0 = self._machine_busy()
        self._s0 = self._sample()
        self.peak_others = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="cpu-meter", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        elapsed = time.monotonic() - self._t0
        return elapsed, self._usage(self._s0, self._sample(), self._busy0, self._machine_busy())
