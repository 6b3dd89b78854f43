"""Access matrix: every route in `app.url_map` (pages, forms, SSE streams, the room websocket,
webhooks, static files) is requested by anonymous, customer A, customer B, mechanic A,
mechanic B and an admin, and the outcome is checked against a policy derived from the
route's blueprint. A new route is covered by default: if its blueprint has no policy, or
one of its URL parameters has no fixture value, the test fails until someone decides.

Fixture world (fresh per test): customer A's paid session, accepted by mechanic A (so those
two are the participants), with a chat line, A's payment and a photo on A's intake; and a
pending request of a third customer; an in-app notice for customer A. Customer B owns nothing.
"""
import io
import json

import pytest
from PIL import Image

import config
from autodoctor import create_app
from autodoctor.extensions import db
from autodoctor.models import MechanicCredential, OutboxEmail, Payment
from autodoctor.services import chat, lifecycle, notifications, uploads
from tests.factories import PASSWORD, PaidSessionFactory, UserFactory, signed

ROLES = ("anonymous", "customer_b", "mechanic_b", "admin", "customer_a", "mechanic_a")

# Expected outcomes.
OPEN = "served"            # the gate lets the request through (any status but 401/403/404/405/5xx)
LOGIN = "login"            # redirect to the login page; 401 for streams and websockets
FORBIDDEN = "403"
NOT_FOUND = "404"
HIDDEN = "403 or 404"      # not yours: refused without saying whether it exists
UNSIGNED = "400"           # webhooks: anybody may call, an unsigned body is rejected
UNSIGNED_401 = "401"       # the LiveKit webhook answers a missing/bad Authorization JWT with 401

# URL parameters that name one of customer A's objects: customer B must get 404 on them.
OWNED_PARAMS = {"session_id", "payment_id", "file_id", "appointment_id"}
ADMIN_CAN_VIEW_ROOM = {"room.summary_show", "room.file_show", "room.thumbnail_show",
                       "room.report_show", "room.report_pdf"}


def _everyone(expectation):
    return {role: expectation for role in ROLES}


def _policy_open(endpoint, rule):
    return _everyone(OPEN)


def _policy_customer(endpoint, rule):
    policy = _everyone(FORBIDDEN) | {"anonymous": LOGIN, "customer_a": OPEN, "customer_b": OPEN}
    if OWNED_PARAMS & set(rule.arguments):
        policy["customer_b"] = NOT_FOUND
    return policy


def _policy_mechanic(endpoint, rule):
    return _everyone(FORBIDDEN) | {"anonymous": LOGIN, "mechanic_a": OPEN, "mechanic_b": OPEN}


def _policy_admin(endpoint, rule):
    return _everyone(FORBIDDEN) | {"anonymous": LOGIN, "admin": OPEN}


def _policy_room(endpoint, rule):
    policy = _everyone(HIDDEN) | {"anonymous": LOGIN, "customer_a": OPEN, "mechanic_a": OPEN}
    if endpoint in ADMIN_CAN_VIEW_ROOM:
        policy["admin"] = OPEN
    return policy


def _policy_webhooks(endpoint, rule):
    return _everyone(UNSIGNED)


# Blueprint name -> policy. `None` is the app itself (only `static`).
POLICIES = {
    None: _policy_open,
    "public": _policy_open,
    "auth": _policy_open,
    "customer": _policy_customer,
    "mechanic": _policy_mechanic,
    "admin": _policy_admin,
    "room": _policy_room,
    "webhooks": _policy_webhooks,
}

# Only the exceptions to the blueprint policies, each with its reason.
EXCEPTIONS = {
    "auth.logout": {"anonymous": LOGIN},              # @login_required
    "room.session_end": {"customer_a": FORBIDDEN},    # only the session's mechanic ends it
    "room.rating_create": {"mechanic_a": FORBIDDEN},  # only the customer rates
    "room.extension_create": {"mechanic_a": FORBIDDEN},  # only the customer buys more time
    "room.report_update": {"customer_a": FORBIDDEN},  # only the session's mechanic writes the report
    "room.report_edit": {"customer_a": FORBIDDEN},
    "webhooks.livekit_create": _everyone(UNSIGNED_401),  # its signature is an Authorization header
    "mechanic.appointment_no_show": {"mechanic_b": NOT_FOUND},  # only the appointment's mechanic
    "mechanic.appointment_complete": {"mechanic_b": NOT_FOUND},
    "mechanic.appointment_tablet_waiver": {"mechanic_b": NOT_FOUND},
    "mechanic.appointment_tablet_waiver_sign": {"mechanic_b": NOT_FOUND},
    # In-app notices (public blueprint, @login_required): the stream is the person's own channel
    # (no id to probe); a notice can be dismissed only by its person (customer A's, in `world`).
    "public.notifications_stream": {"anonymous": LOGIN},
    "public.notification_dismiss_all": {"anonymous": LOGIN},
    "public.notification_dismiss": {"anonymous": LOGIN, "customer_b": NOT_FOUND, "mechanic_a": NOT_FOUND,
                                    "mechanic_b": NOT_FOUND, "admin": NOT_FOUND},
    "public.presence_stream": {"anonymous": LOGIN},  # live presence badges: @login_required
}


def policy_for(endpoint, rule):
    blueprint = endpoint.rsplit(".", 1)[0] if "." in endpoint else None
    if blueprint not in POLICIES:
        pytest.fail(f"endpoint {endpoint!r} ({rule.rule}) has no access policy: add its blueprint "
                    f"{blueprint!r} to POLICIES (or the endpoint to EXCEPTIONS)")
    policy = POLICIES[blueprint](endpoint, rule)
    policy.update(EXCEPTIONS.get(endpoint, {}))
    assert set(policy) == set(ROLES), f"policy for {endpoint} must name every role"
    return policy


def _is_stream(rule):
    return rule.rule.endswith("/stream")


def _routes(url_map):
    """(endpoint, method, rule) for every method of every rule, HEAD/OPTIONS aside."""
    found = []
    for rule in url_map.iter_rules():
        methods = ["WS"] if rule.websocket else sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        for method in methods:
            found.append((rule.endpoint, method, rule))
    return sorted(found, key=lambda r: (r[0], r[1]))


# Collected from an app built at import time, so each route is its own test case; the
# `matrix` app must have exactly these (test_collected_routes_match_the_app).
COLLECTED = [(endpoint, method, rule.rule) for endpoint, method, rule in _routes(create_app(config.TestConfig).url_map)]


def _appointment(customer_id, mechanic_id):
    """A booked appointment of customer A with mechanic A, three days ahead."""
    from datetime import timedelta

    from autodoctor import clock
    from autodoctor.models import Appointment, Plan

    starts_at = clock.now().replace(second=0, microsecond=0) + timedelta(days=3)
    plan = db.session.scalar(db.select(Plan).where(Plan.code == "video15"))
    appointment = Appointment(customer_id=customer_id, mechanic_id=mechanic_id, plan_id=plan.id, status="booked",
                              starts_at=starts_at, ends_at=starts_at + timedelta(minutes=plan.minutes))
    db.session.add(appointment)
    db.session.commit()
    return appointment


def _png():
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _matrix_config(upload_dir):
    class Cfg(config.TestConfig):
        UPLOAD_DIR = str(upload_dir)

    return Cfg


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """One app and one world for the whole matrix (the requests under test change nothing
    that another row depends on), plus a session cookie per role from a real login.
    Requests run with no app context pushed, as in production: each gets its own `g`."""
    from argon2 import PasswordHasher

    from autodoctor.services import accounts

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # as conftest does per test
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "_hasher", cheap)
        patch.setattr(accounts, "_DUMMY_HASH", cheap.hash("not-a-real-password"))
        yield from _build_matrix(tmp_path_factory)


def _build_matrix(tmp_path_factory):
    from autodoctor.services import plans

    app = create_app(_matrix_config(tmp_path_factory.mktemp("matrix-uploads")))
    with app.test_request_context():  # services build URLs as they would in a view
        db.create_all()
        plans.seed_plans()
        people = {
            "customer_a": UserFactory("customer", "a@example.com"),
            "customer_b": UserFactory("customer", "b@example.com"),
            "mechanic_a": UserFactory("mechanic", "ma@example.com"),
            "mechanic_b": UserFactory("mechanic", "mb@example.com"),
            "admin": UserFactory("admin", "admin@example.com"),
        }
        db.session.commit()
        customer_a, mechanic_a = people["customer_a"], people["mechanic_a"]
        session = PaidSessionFactory(customer_a)
        db.session.commit()
        lifecycle.accept_request(session.current_request.id, mechanic_a.id)
        db.session.commit()
        chat.post_message(session.id, customer_a.id, "Hello from customer A")
        photo = uploads.store(uploads.check("dashboard.png", _png(), kinds=("image",)), customer_a.id,
                              intake_id=session.intake_id)
        db.session.commit()
        payment = db.session.scalar(db.select(Payment).where(Payment.session_id == session.id))
        pending = PaidSessionFactory(UserFactory("customer", "c@example.com"))
        db.session.commit()
        assert session.status == "waiting" and pending.current_request.status == "pending"
        appointment = _appointment(customer_a.id, mechanic_a.id)
        notice = notifications.notify(customer_a.id, "appointment_reminder", "Your appointment is tomorrow")
        db.session.commit()
        document = uploads.store(uploads.check("cert.png", _png(), kinds=("image",)), mechanic_a.id)
        db.session.flush()
        credential = MechanicCredential(mechanic_id=mechanic_a.id, kind="certificate", file_id=document.id)
        db.session.add(credential)
        db.session.commit()
        email_id = db.session.scalar(db.select(OutboxEmail.id).order_by(OutboxEmail.id).limit(1))
        assert email_id is not None  # the paid session's receipt
        world = {
            "session_id": session.id,
            "appointment_id": appointment.id,
            "notification_id": notice.id,
            "payment_id": payment.id,
            "file_id": photo.id,
            "request_id": pending.current_request.id,
            "filename": "css/app-2.css",
            "step": "vehicle",  # the book-now wizard's first step
            "mechanic_id": mechanic_a.id,  # public profile, favorite toggle (anyone may look; customers favorite)
            "user_id": people["customer_b"].id,  # admin user pages (customer B owns nothing the rows need)
            "plan_id": session.plan_id,  # admin plan editor
            "email_id": email_id,  # admin outbox viewer
            "credential_id": credential.id,  # a mechanic's application document (admins only)
            "token": "not-a-valid-token",  # password reset link: a bad token is answered 410
        }
        emails = {role: user.email for role, user in people.items()}
        db.session.remove()
    cookies = {}
    for role, email in emails.items():
        client = app.test_client()
        response = client.post("/login", data={"email": email, "password": PASSWORD})
        assert response.status_code == 303, response.get_data(as_text=True)[:300]
        cookies[role] = client.get_cookie("session").value
    yield app, world, cookies
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


def _client(app, cookies, role):
    client = app.test_client()
    if role != "anonymous":
        client.set_cookie("session", cookies[role])
    return client


def _request(client, method, path, rule, endpoint, role):
    if method == "WS":
        return client.get(path, headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                         "Sec-WebSocket-Version": "13"})
    if _is_stream(rule):
        return client.get(path, headers={"Accept": "text/event-stream"}, buffered=False)
    if endpoint == "webhooks.stripe_create":
        return client.post(path, data=json.dumps({"id": "evt_unsigned", "type": "checkout.session.completed"}),
                           content_type="application/json")
    if endpoint == "auth.login":  # a wrong password per role, so the login rate limit is not what answers
        return client.post(path, data={"email": f"nobody-{role}@example.com", "password": "wrong-password"})
    return client.open(path, method=method, data={})


def _check(response, expectation, *, stream, websocket, where):
    status = response.status_code
    location = response.headers.get("Location", "")
    assert status < 500, f"{where}: {status} (never a 500)"
    if expectation == OPEN:
        assert status not in (401, 403, 404, 405), f"{where}: expected to be served, got {status}"
        if 300 <= status < 400:
            assert "/login" not in location, f"{where}: sent to log in ({location})"
        if stream and status == 200:
            assert response.mimetype == "text/event-stream", where
            first = next(iter(response.response))
            assert (first.decode() if isinstance(first, bytes) else first).startswith(":"), where
    elif expectation == LOGIN:
        if stream or websocket:
            assert status == 401, f"{where}: expected 401, got {status}"
        else:
            assert status in (302, 303) and "/login" in location, \
                f"{where}: expected a redirect to the login page, got {status} {location!r}"
    elif expectation == FORBIDDEN:
        assert status == 403, f"{where}: expected 403, got {status}"
    elif expectation == NOT_FOUND:
        assert status == 404, f"{where}: expected 404, got {status}"
    elif expectation == HIDDEN:
        assert status in (403, 404), f"{where}: expected 403/404, got {status}"
    elif expectation == UNSIGNED:
        assert status == 400, f"{where}: expected 400, got {status}"
    elif expectation == UNSIGNED_401:
        assert status == 401, f"{where}: expected 401, got {status}"
    else:  # pragma: no cover
        raise AssertionError(expectation)


def test_every_blueprint_has_a_policy():
    """Collection-time check: a route whose blueprint has no policy fails here too."""
    for endpoint, _, _ in COLLECTED:
        blueprint = endpoint.rsplit(".", 1)[0] if "." in endpoint else None
        assert blueprint in POLICIES, f"no access policy for {endpoint}"
    assert set(EXCEPTIONS) <= {endpoint for endpoint, _, _ in COLLECTED}, "stale EXCEPTIONS entry"


def test_the_matrix_sees_the_websocket_and_the_streams():
    kinds = {(method, path) for _, method, path in COLLECTED}
    assert ("WS", "/room/<int:session_id>/ws") in kinds
    assert sum(1 for _, _, path in COLLECTED if path.endswith("/stream")) >= 3


def test_collected_routes_match_the_app(matrix):
    assert [(e, m, r.rule) for e, m, r in _routes(matrix[0].url_map)] == COLLECTED


@pytest.mark.parametrize("endpoint,method,path", COLLECTED, ids=[f"{m} {e}" for e, m, _ in COLLECTED])
def test_access(matrix, endpoint, method, path):
    app, world, cookies = matrix
    rule = next(r for e, m, r in _routes(app.url_map) if (e, m, r.rule) == (endpoint, method, path))
    missing = [arg for arg in rule.arguments if arg not in world]
    assert not missing, f"{endpoint}: no fixture value for URL parameter(s) {missing}; add them to `world`"
    url = rule.build({arg: world[arg] for arg in rule.arguments}, append_unknown=False)[1]
    policy = policy_for(endpoint, rule)
    stream, websocket = _is_stream(rule), method == "WS"
    for role in ROLES:
        expectation = policy[role]
        if websocket and expectation == OPEN:
            continue  # the test client cannot complete a handshake; tests/e2e covers the allowed side
        response = _request(_client(app, cookies, role), method, url, rule, endpoint, role)
        try:
            _check(response, expectation, stream=stream, websocket=websocket,
                   where=f"{method} {url} as {role} ({endpoint}, expected {expectation})")
        finally:
            response.close()


def test_webhook_accepts_a_signed_event_from_anyone(app, client):
    """The other half of the webhook policy: no login, no CSRF, only the signature."""
    payload, headers = signed({"id": "evt_matrix_1", "type": "customer.created", "data": {"object": {}}})
    response = client.post("/webhooks/stripe", data=payload, headers=headers)
    assert response.status_code == 200
    assert response.get_json()["outcome"] == "ignored"
