"""Event broker and SSE framing.

Services call emit() inside their transaction; after the commit, each event is handed to
the presenters registered for its kind (blueprints render fragments once per event) and
the resulting messages are published on named channels. The broker is Redis pub/sub when
REDIS_URL is set (one subscriber per process, fanned out in-process) and an in-process
fan-out otherwise. The broker keeps nothing: reconnecting clients are replayed from the
database by the endpoint that serves them.
"""
import json
import logging
import queue
import select
import socket
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass

from flask import current_app, has_request_context, request

log = logging.getLogger(__name__)
_presenters = defaultdict(list)


@dataclass
class Message:
    channel: str
    event: str
    data: str
    id: str | None = None
    skip_user: int | None = None  # not sent to this user's own sockets (their typing, their "seen")


def emit(kind, **data):
    """Queue a domain event; it is presented and published only if the transaction commits."""
    from autodoctor.extensions import after_commit

    app = current_app._get_current_object()
    after_commit(lambda: dispatch(app, kind, data))


def presenter(*kinds):
    """Register fn(data) -> iterable of Message for the given event kinds."""

    def decorator(fn):
        for kind in kinds:
            _presenters[kind].append(fn)
        return fn

    return decorator


def dispatch(app, kind, data):
    messages = []
    with app.app_context():
        ctx = None if has_request_context() else app.test_request_context(base_url=app.config["PUBLIC_URL"])
        if ctx:
            ctx.push()
        try:
            for fn in _presenters.get(kind, ()):
                messages.extend(fn(**data))
        finally:
            if ctx:
                ctx.pop()
    broker = app.extensions["broker"]
    for message in messages:
        broker.publish(message)


# A suspended or banned person's open streams end: every SSE response of a logged-in person
# also listens on their account channel, and a message with this event there ends the stream
# (the browser's reconnect then finds them logged out).
ACCOUNT_CLOSED = "account.closed"
ROOM_REMOVED = "room.removed"  # on a room's channel, data = the user id taken off the session: their socket ends


def account_channel(user_id):
    return f"account:{user_id}"


def _account_channels():
    from flask_login import current_user

    if has_request_context() and current_user.is_authenticated:
        return [account_channel(current_user.id)]
    return []


def sse_format(message: Message) -> str:
    lines = []
    if message.id:
        lines.append(f"id: {message.id}")
    lines.append(f"event: {message.event}")
    lines.extend(f"data: {line}" for line in message.data.splitlines() or [""])
    return "\n".join(lines) + "\n\n"


class Subscription:
    def __init__(self, broker, channels):
        self.broker = broker
        self.channels = tuple(channels)
        self.queue = queue.Queue(maxsize=1000)

    def get(self, timeout=None):
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def deliver(self, message):
        try:
            self.queue.put_nowait(message)
        except queue.Full:  # a stalled client; it resyncs from the database on reconnect
            log.warning("dropping message for a full subscription on %s", self.channels)

    def close(self):
        self.broker._remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LocalBroker:
    """In-process fan-out (embedded mode, single process)."""

    def __init__(self):
        self._subs = defaultdict(set)
        self._lock = threading.Lock()

    def subscribe(self, channels):
        sub = Subscription(self, channels)
        with self._lock:
            for channel in sub.channels:
                self._subs[channel].add(sub)
        return sub

    def _remove(self, sub):
        with self._lock:
            for channel in sub.channels:
                self._subs[channel].discard(sub)

    def publish(self, message):
        self._fan_out(message)

    def _fan_out(self, message):
        with self._lock:
            subs = list(self._subs.get(message.channel, ()))
        for sub in subs:
            sub.deliver(message)

    def subscriber_count(self):
        with self._lock:
            return sum(len(s) for s in self._subs.values())


class RedisBroker(LocalBroker):
    """Redis pub/sub between processes; one listener thread per process fans out locally."""

    PREFIX = "autodoctor:"

    def __init__(self, url):
        super().__init__()
        import redis

        self._redis = redis.Redis.from_url(url)
        # Pub/sub channels are shared by every database of a Redis server: name ours after the
        # database in REDIS_URL, so deployments kept apart by database number stay apart.
        self.prefix = f"{self.PREFIX}{self._redis.connection_pool.connection_kwargs.get('db', 0)}:"
        self._listener = None
        self._started = threading.Lock()

    def publish(self, message):
        self._redis.publish(self.prefix + message.channel, json.dumps(asdict(message)))

    def subscribe(self, channels):
        self._ensure_listener()
        return super().subscribe(channels)

    def _ensure_listener(self):
        with self._started:
            if self._listener is None or not self._listener.is_alive():
                ready = threading.Event()
                self._listener = threading.Thread(target=self._listen, args=(ready,),
                                                  name="redis-broker", daemon=True)
                self._listener.start()
                ready.wait(5)

    def _listen(self, ready):
        import redis

        while True:
            try:
                pubsub = self._redis.pubsub()
                pubsub.psubscribe(self.prefix + "*")
                for raw in pubsub.listen():
                    if raw["type"] == "psubscribe":  # Redis confirmed: nothing published from now on is missed
                        ready.set()
                    elif raw["type"] == "pmessage":
                        self._fan_out(Message(**json.loads(raw["data"])))
            except redis.RedisError:
                log.exception("redis broker connection lost; reconnecting")
                threading.Event().wait(1)


def make_broker(app):
    url = app.config.get("REDIS_URL")
    return RedisBroker(url) if url else LocalBroker()


def stream(subscription, initial=(), keepalive=15, on_keepalive=None, client_gone=None):
    """Yield SSE text: a comment at once (proxies must see a first byte), the initial
    messages, then live messages with a comment every `keepalive` seconds.

    `on_keepalive()` (a heartbeat) runs every `keepalive` seconds while the stream is busy or
    idle, each time after a write went through, so a client that has left stops it. Before each
    beat `client_gone()` (if given) may end the stream: a closed tab is not counted as seen
    once more just because one last write still fit into the socket buffer."""
    try:
        yield ": connected\n\n"
        for message in initial:
            yield sse_format(message)
        last_beat = time.monotonic()
        while True:
            wait = keepalive if on_keepalive is None else max(0.05, keepalive - (time.monotonic() - last_beat))
            message = subscription.get(timeout=wait)
            if message is not None and message.event == ACCOUNT_CLOSED:
                return
            yield ": keepalive\n\n" if message is None else sse_format(message)
            if on_keepalive is not None and time.monotonic() - last_beat >= keepalive:
                if client_gone is not None and client_gone():
                    return
                last_beat = time.monotonic()
                on_keepalive()
    finally:
        subscription.close()


def sse_response(channels, snapshot, on_keepalive=None, keepalive=None):
    """An SSE response: subscribe first (nothing is missed), then read the current state
    (`snapshot()` -> messages) from the database, release the database connection, stream.

    `on_keepalive()` runs inside the streaming generator, which Flask runs after the view
    returned (no app or request context left; under gevent in the connection's own greenlet):
    it gets a fresh app context each time, commits its own work, and whatever it raises is
    logged, never allowed to end the stream. `keepalive` overrides SSE_KEEPALIVE_SECONDS."""
    from autodoctor.extensions import db

    app = current_app._get_current_object()
    subscription = app.extensions["broker"].subscribe([*channels, *_account_channels()])
    try:
        initial = snapshot()
    except BaseException:
        subscription.close()
        raise
    db.session.rollback()  # ends the read transaction: no connection is held while streaming
    keepalive = keepalive or app.config["SSE_KEEPALIVE_SECONDS"]
    beat = gone = None
    if on_keepalive is not None:
        beat = _in_app_context(app, on_keepalive)
        gone = _client_gone_check(request.environ) if has_request_context() else None
    return app.response_class(stream(subscription, initial, keepalive, beat, gone),
                              mimetype="text/event-stream",
                              headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _in_app_context(app, fn):
    def run():
        try:
            with app.app_context():
                fn()
        except Exception:
            log.exception("stream keepalive callback failed; the stream carries on")

    return run


def _client_gone_check(environ):
    """gunicorn hands the client socket to the app: a client that closed its end makes it
    readable with nothing to read (EOF). An SSE client sends nothing after its request, so
    that is the only way it becomes readable. None where the server does not say (tests)."""
    sock = environ.get("gunicorn.socket")
    if sock is None:
        return None

    def gone():
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):  # reset, or already closed
            return True

    return gone
