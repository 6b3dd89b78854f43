"""Room chat over real websockets against the live server (gunicorn gevent x2 + Redis pub/sub
+ Postgres), with CSRF on. The session is created through the UI's own HTTP calls: a new
customer signs up, fills the intake, pays with the test card; a demo mechanic accepts.

- The customer's socket is dropped mid-conversation while the mechanic keeps sending; the
  customer reconnects with ?after=<last id it saw>. After de-duplicating by message id (as
  the page does), every line has arrived exactly once and in order, and no connection was
  sent the same line twice.
- A line with HTML is delivered escaped.
- Anybody who is not one of the two participants cannot open the room's socket.
"""
import html
import json
import re
import socket
import threading
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa
import websocket

from autodoctor.extensions import db
from autodoctor.models import ConsultSession
from autodoctor.services import routing

pytestmark = pytest.mark.e2e
DEMO_PASSWORD = "autodoctor-demo"
DEMO_MECHANICS = ("raj@autodoctor.example", "lena@autodoctor.example", "mia@autodoctor.example")
MSG = re.compile(r'<div class="msg" id="msg-(\d+)" data-msg-id="\1"[^>]*>.*?<span class="body">(.*?)</span>', re.S)


# --- HTTP, the way the pages do it ----------------------------------------------------------

class Visitor:
    """A cookie-keeping HTTP client that sends the page's CSRF token like the forms and
    htmx (hx-headers on <body>) do."""

    def __init__(self, base):
        self.base = base
        self.http = requests.Session()
        self.csrf = None

    def get(self, path, **kwargs):
        response = self.http.get(self.base + path, timeout=10, **kwargs)
        self._remember_csrf(response.text)
        return response

    def post(self, path, data=None, htmx=False, **kwargs):
        """A form post (csrf_token field) or an htmx request (HX-Request, X-CSRFToken header)."""
        headers = {"X-CSRFToken": self.csrf, "HX-Request": "true"} if htmx else {}
        data = dict(data or {})
        if not htmx:
            data["csrf_token"] = self.csrf
        response = self.http.post(self.base + path, data=data, headers=headers, timeout=15, **kwargs)
        self._remember_csrf(response.text)
        return response

    def _remember_csrf(self, text):
        found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', text) or \
            re.search(r'"X-CSRFToken": "([^"]+)"', text)
        if found:
            self.csrf = found.group(1)

    @property
    def cookie(self):
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)

    def ws_url(self, session_id, after=None):
        url = f"ws://{urlsplit(self.base).netloc}/room/{session_id}/ws"
        return url if after is None else f"{url}?after={after}"


def log_in(base, email, password=DEMO_PASSWORD):
    visitor = Visitor(base)
    visitor.get("/login")
    assert visitor.csrf, "the login form carries a CSRF token"
    response = visitor.post("/login", {"email": email, "password": password}, allow_redirects=False)
    assert response.status_code == 303, (email, response.status_code, response.text[:300])
    return visitor


def sign_up_customer(base):
    visitor = Visitor(base)
    visitor.get("/signup")
    email = f"chat-{uuid.uuid4().hex[:10]}@example.com"
    response = visitor.post("/signup", {"full_name": "Robin Roadside", "email": email,
                                        "password": "a-long-enough-password", "confirm": "a-long-enough-password"},
                            allow_redirects=False)
    assert response.status_code == 303, response.text[:300]
    return visitor


def paid_session(customer, concern):
    """Intake + test checkout with 4242 4242 4242 4242; returns the session id."""
    customer.get("/customer/intake?plan=chat10")
    response = customer.post("/customer/intake", {
        "plan": "chat10", "year": "2012", "make": "Toyota", "model": "Corolla", "vin": "", "concern": concern,
        "city": "Toronto", "country": "CA", "accept_waiver": "y"})
    assert re.search(r"/customer/checkout/\d+/test$", response.url), (response.status_code, response.url)
    response = customer.post(urlsplit(response.url).path, {"card_number": "4242 4242 4242 4242"})
    found = re.search(r"/customer/sessions/(\d+)$", response.url)
    assert found, (response.status_code, response.url, response.text[:300])
    return int(found.group(1))


def accept_as_a_free_mechanic(base, concern):
    """A demo mechanic taps Accept on the card showing this concern (htmx POST with the page's
    X-CSRFToken). Another test may have left a mechanic busy: try the next one then."""
    for email in DEMO_MECHANICS:
        mechanic = log_in(base, email)
        page = mechanic.get("/mechanic/").text
        cards = re.findall(r'<article class="card request[^"]*" id="request-(\d+)">(.*?)</article>', page, re.S)
        request_id = next((rid for rid, card in cards if concern in html.unescape(card)), None)
        assert request_id, f"the request is on {email}'s dashboard"
        response = mechanic.post(f"/mechanic/requests/{request_id}/accept", htmx=True, allow_redirects=False)
        if response.status_code == 204:
            return mechanic, response.headers["HX-Redirect"]
        assert response.status_code == 409, (response.status_code, response.text[:300])
    pytest.fail("no demo mechanic was free to accept")


# --- websockets -------------------------------------------------------------------------------

class Conn:
    """One websocket connection and every frame it received."""

    def __init__(self, visitor, session_id, after=None):
        self.ws = websocket.create_connection(visitor.ws_url(session_id, after), cookie=visitor.cookie, timeout=10)
        self.frames = []
        self.lines = []  # (id, body) of every chat line received, duplicates included
        self._lock = threading.Lock()

    def send(self, body):
        self.ws.send(json.dumps({"body": body, "client_token": uuid.uuid4().hex}))

    def _take(self, frame):
        with self._lock:
            self.frames.append(frame)
            self.lines.extend((int(i), html.unescape(b.strip())) for i, b in MSG.findall(frame))

    def read_until(self, done, timeout=15):
        """Read frames until done(self) is true."""
        deadline = time.monotonic() + timeout
        self.ws.settimeout(0.25)
        while not done(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; got lines {self.lines[-10:]}")
            try:
                self._take(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                continue

    def read_in_background(self):
        stop = threading.Event()

        def run():
            self.ws.settimeout(0.25)
            while not stop.is_set():
                try:
                    self._take(self.ws.recv())
                except websocket.WebSocketTimeoutException:
                    continue
                except (websocket.WebSocketConnectionClosedException, OSError):
                    return

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return stop, thread

    def has_body(self, body):
        with self._lock:
            return any(b == body for _, b in self.lines)

    def ids(self):
        with self._lock:
            return [i for i, _ in self.lines]

    def drop(self):
        """The network goes away: no close frame, the TCP connection just dies."""
        self.ws.sock.shutdown(socket.SHUT_RDWR)
        self.ws.sock.close()

    def close(self):
        try:
            self.ws.close(timeout=1)
        except Exception:  # noqa: BLE001 - already gone
            pass


def stored_lines(live_server, session_id):
    engine = sa.create_engine(live_server.database_url)
    try:
        with engine.connect() as conn:
            return [(row.id, row.body) for row in conn.execute(sa.text(
                "SELECT id, body FROM chat_messages WHERE session_id = :s ORDER BY id"), {"s": session_id})]
    finally:
        engine.dispose()


def dedupe(lines):
    """What the page does: drop a line whose id is already on screen."""
    seen, kept = set(), []
    for line_id, body in lines:
        if line_id not in seen:
            seen.add(line_id)
            kept.append((line_id, body))
    return kept


def assert_each_line_at_most_once(conn, name):
    ids = conn.ids()
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    assert not repeated, f"the server sent {name} lines {repeated} more than once on one connection"


# --- the room ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def room(live_server, live_app):
    base = live_server.url
    concern = f"Rattle from the dashboard at idle, ref {uuid.uuid4().hex[:8]}"
    customer = sign_up_customer(base)
    session_id = paid_session(customer, concern)
    with live_app.app_context():  # mechanics another test left online get no head start on this one
        routing.broadcast(db.session.get(ConsultSession, session_id).current_request.id, early=True)
        db.session.commit()
    mechanic, redirect = accept_as_a_free_mechanic(base, concern)
    assert redirect.endswith(f"/room/{session_id}")
    assert customer.get(f"/room/{session_id}").status_code == 200
    assert mechanic.get(f"/room/{session_id}").status_code == 200
    yield {"base": base, "session_id": session_id, "customer": customer, "mechanic": mechanic}
    # Free the mechanic for the other live-server tests: end the session with notes.
    mechanic.get(f"/room/{session_id}")
    ended = mechanic.post(f"/room/{session_id}/end", {"notes": "Chat reconnect test finished."}, htmx=True)
    assert ended.status_code == 204, ended.text[:300]


def test_html_in_a_chat_line_is_escaped(room):
    customer = Conn(room["customer"], room["session_id"])
    mechanic = Conn(room["mechanic"], room["session_id"])
    try:
        body = '<script>alert("owned")</script> is it the <b>alternator</b>?'
        customer.send(body)
        for conn in (customer, mechanic):
            conn.read_until(lambda c: c.has_body(body))
            frame = next(f for f in conn.frames if "alert(" in f)
            assert "<script>" not in frame and "<b>alternator" not in frame
            assert "&lt;script&gt;" in frame and "&lt;b&gt;alternator&lt;/b&gt;" in frame
    finally:
        customer.close()
        mechanic.close()


def test_dropped_socket_reconnects_and_every_line_arrives_once_in_order(room, live_server):
    session_id = room["session_id"]
    mechanic = Conn(room["mechanic"], session_id)
    stop_mechanic_reader, mechanic_reader = mechanic.read_in_background()
    first = Conn(room["customer"], session_id)
    second = None
    try:
        # A conversation, one line at a time.
        for n in range(3):
            first.send(f"customer line {n}")
            first.read_until(lambda c, n=n: c.has_body(f"customer line {n}"))
            mechanic.send(f"mechanic line {n}")
            first.read_until(lambda c, n=n: c.has_body(f"mechanic line {n}"))

        # The mechanic keeps typing; the customer's network drops mid-burst.
        burst = [f"mechanic burst {k}" for k in range(30)]

        def keep_sending():
            for body in burst:
                mechanic.send(body)
                time.sleep(0.03)

        sender = threading.Thread(target=keep_sending, daemon=True)
        sender.start()
        first.read_until(lambda c: sum(b.startswith("mechanic burst") for _, b in c.lines) >= 5)
        first.drop()
        last_seen = first.lines[-1][0]
        time.sleep(0.3)

        # Back online, asking for what came after the last line on screen.
        second = Conn(room["customer"], session_id, after=last_seen)
        sender.join(15)
        assert not sender.is_alive()
        deadline = time.monotonic() + 15
        while not all(mechanic.has_body(b) for b in burst):  # every burst line is committed
            assert time.monotonic() < deadline, "the mechanic's own lines did not come back"
            time.sleep(0.05)
        second.read_until(lambda c: c.has_body(burst[-1]))

        # And the reconnected socket works both ways.
        second.send("customer is back")
        second.read_until(lambda c: c.has_body("customer is back"))
        deadline = time.monotonic() + 10
        while not mechanic.has_body("customer is back"):
            assert time.monotonic() < deadline, "the mechanic did not get the line sent after reconnecting"
            time.sleep(0.05)

        expected = stored_lines(live_server, session_id)
        assert [b for _, b in expected if b.startswith("mechanic burst")] == burst
        assert not first.has_body(burst[-1]), "the drop happened mid-burst: the replay had lines to make up"
        seen_by_customer = dedupe(first.lines + second.lines)
        assert seen_by_customer == expected, "after de-duplication: every line exactly once, in order"
        assert dedupe(mechanic.lines) == expected
        for conn, name in ((first, "customer (before the drop)"), (second, "customer (after reconnecting)"),
                           (mechanic, "mechanic")):
            assert_each_line_at_most_once(conn, name)
        replayed_again = [i for i in second.ids() if i <= last_seen]
        assert replayed_again, "the replay overlaps the lines already seen (the page de-duplicates them)"
        assert len(replayed_again) <= 20
    finally:
        stop_mechanic_reader.set()
        mechanic_reader.join(2)
        mechanic.close()
        if second:
            second.close()


def test_only_participants_can_open_the_room_socket(room):
    session_id = room["session_id"]
    outsider = sign_up_customer(room["base"])
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        Conn(outsider, session_id)
    assert refused.value.status_code in (403, 404)

    with pytest.raises(websocket.WebSocketBadStatusException) as anonymous:
        Conn(Visitor(room["base"]), session_id)
    assert anonymous.value.status_code == 401


def test_room_lines_stay_within_their_redis_database():
    """Redis pub/sub ignores the database number: two deployments on one Redis server, kept
    apart by database (as the live server and the benchmark are here), must not hear each
    other's room channels — a chat line from one showed up in the other's room."""
    from autodoctor.realtime import Message, RedisBroker
    from tests.conftest import REDIS_TEST_URL, require_services

    require_services()
    here = REDIS_TEST_URL.rsplit("/", 1)[0]
    ours, theirs = RedisBroker(f"{here}/5"), RedisBroker(f"{here}/6")
    with ours.subscribe(["room:1"]) as subscription, theirs.subscribe(["room:1"]) as control:
        theirs.publish(Message("room:1", "chat", "<div>not for you</div>", "msg-1"))
        assert control.get(timeout=5) is not None, "the other deployment hears itself"
        assert subscription.get(timeout=0.5) is None, "a line crossed over from another Redis database"
