"""Video in the room: LiveKit tokens (checked with livekit-api's own verifier), who gets one
and when, the page with and without LiveKit settings, LiveKit code only on the room page,
and the signed LiveKit webhook that puts joins and leaves on the session timeline."""
import base64
import hashlib
import json
import re
import time

import jwt
import pytest
from livekit.api import AccessToken, TokenVerifier

from autodoctor.extensions import db
from autodoctor.models import SessionEvent
from autodoctor.services import lifecycle
from tests.factories import AcceptedSessionFactory, PaidSessionFactory, UserFactory

KEY = "APIvideotestkey"
SECRET = "video-test-secret-that-is-long-enough-0123456789"
LIVEKIT_URL = "wss://autodoctor-test.livekit.example"


@pytest.fixture
def livekit(app):
    app.config.update(LIVEKIT_URL=LIVEKIT_URL, LIVEKIT_API_KEY=KEY, LIVEKIT_API_SECRET=SECRET,
                      LIVEKIT_TOKEN_TTL_SECONDS=600)
    return app


@pytest.fixture
def people(app):
    cast = {"customer": UserFactory("customer", full_name="Sam Driver"),
            "mechanic": UserFactory("mechanic", full_name="Mia Wrench"),
            "other_customer": UserFactory("customer"), "other_mechanic": UserFactory("mechanic"),
            "admin": UserFactory("admin")}
    db.session.commit()
    return cast


def _accepted_session(people, plan_code="video15"):
    return AcceptedSessionFactory(people["customer"], people["mechanic"], plan_code)


@pytest.fixture
def video_session(people):
    return _accepted_session(people)


def _complete(session, people):
    for role in ("customer", "mechanic"):
        lifecycle.join_room(session.id, people[role].id)
        db.session.commit()
    assert lifecycle.maybe_go_live(session.id)
    db.session.commit()
    lifecycle.end_session(session.id, people["mechanic"].id, "Brake pads worn; replace soon.")
    db.session.commit()


def _token_url(session):
    return f"/room/{session.id}/video/token"


# --- tokens ---------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["customer", "mechanic"])
def test_participants_get_a_short_token_for_this_session_room_only(livekit, login, people, video_session, role):
    user = people[role]
    response = login(user).post(_token_url(video_session))

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["url"] == LIVEKIT_URL
    assert body["identity"] == str(user.id)
    claims = TokenVerifier(KEY, SECRET).verify(body["token"])
    assert claims.identity == str(user.id)
    assert claims.name == user.full_name
    assert claims.video.room == f"session-{video_session.id}"
    assert claims.video.room_join is True
    assert claims.video.can_publish and claims.video.can_subscribe
    # Nothing beyond joining this one room.
    assert not claims.video.room_create and not claims.video.room_list and not claims.video.room_admin
    assert not claims.video.room_record and claims.video.destination_room is None
    raw = jwt.decode(body["token"], options={"verify_signature": False})
    assert raw["iss"] == KEY
    assert raw["exp"] - raw["nbf"] == 600
    assert raw["exp"] <= time.time() + 15 * 60
    with pytest.raises(jwt.InvalidSignatureError):
        TokenVerifier(KEY, "some-other-secret-that-is-long-enough-000000").verify(body["token"])


def test_each_session_gets_its_own_room(livekit, login, people, video_session):
    second = PaidSessionFactory(UserFactory("customer"), "diagnostic")
    db.session.commit()
    lifecycle.accept_request(second.current_request.id, people["other_mechanic"].id)
    db.session.commit()
    first_token = login(people["customer"]).post(_token_url(video_session)).get_json()["token"]
    second_token = login(people["other_mechanic"]).post(_token_url(second)).get_json()["token"]
    rooms = {TokenVerifier(KEY, SECRET).verify(t).video.room for t in (first_token, second_token)}
    assert rooms == {f"session-{video_session.id}", f"session-{second.id}"}


@pytest.mark.parametrize("role", ["other_customer", "other_mechanic", "admin"])
def test_people_outside_the_session_get_no_token(livekit, login, people, video_session, role):
    response = login(people[role]).post(_token_url(video_session))
    assert response.status_code == 404
    assert not re.search(r"eyJ[\w-]+\.eyJ", response.get_data(as_text=True))  # no JWT of any kind


def test_anonymous_visitors_are_sent_to_log_in(livekit, client, video_session):
    response = client.post(_token_url(video_session))
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]


def test_chat_plan_sessions_have_no_video(livekit, login, people):
    session = _accepted_session(people, "chat10")
    response = login(people["customer"]).post(_token_url(session))
    assert response.status_code == 409
    assert response.get_json() == {"error": "Quick Chat is a chat session: it has no video call."}
    assert response.headers["Cache-Control"] == "no-store"


def test_a_completed_session_has_no_video(livekit, login, people, video_session):
    _complete(video_session, people)
    response = login(people["mechanic"]).post(_token_url(video_session))
    assert response.status_code == 409
    assert response.get_json()["error"] == "This session has ended, so its video call is closed."


def test_no_token_before_a_mechanic_accepts(livekit, login, people):
    session = PaidSessionFactory(people["customer"], "video15")
    db.session.commit()
    response = login(people["customer"]).post(_token_url(session))
    assert response.status_code == 409
    assert "once a mechanic has accepted" in response.get_json()["error"]


def test_token_requests_need_the_pages_csrf_token(livekit, login, people, video_session):
    browser = login(people["customer"])
    livekit.config["WTF_CSRF_ENABLED"] = True
    try:
        assert browser.post(_token_url(video_session)).status_code == 400
        page = browser.get(f"/room/{video_session.id}").get_data(as_text=True)
        csrf = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
        response = browser.post(_token_url(video_session), headers={"X-CSRFToken": csrf})
        assert response.status_code == 200
    finally:
        livekit.config["WTF_CSRF_ENABLED"] = False


# --- the page -------------------------------------------------------------------------------

def test_video_room_page_has_the_prejoin_screen_and_loads_livekit(livekit, login, people, video_session):
    html = login(people["customer"]).get(f"/room/{video_session.id}").get_data(as_text=True)
    assert "js/livekit-client-2.23.0.umd.min.js" in html
    assert "js/room-video-1.js" in html
    assert f'data-token-url="/room/{video_session.id}/video/token"' in html
    for element in ('id="video-preview"', 'id="video-camera"', 'id="video-microphone"', 'id="video-join"',
                    'id="video-mic"', 'id="video-cam"', 'id="video-screen"', 'id="video-leave"',
                    'id="video-reconnecting"'):
        assert element in html
    assert "Waiting for Mia to join the video" in html  # the customer waits for their mechanic
    assert 'id="chat-form"' in html


def test_without_livekit_settings_the_room_says_video_is_off_and_chat_works(app, login, people, video_session):
    customer = login(people["customer"])
    html = customer.get(f"/room/{video_session.id}").get_data(as_text=True)
    assert "Video is not configured on this server" in html
    assert "livekit" not in html.lower()
    assert "room-video-1.js" not in html and 'id="video-join"' not in html
    assert 'id="chat-form"' in html
    response = customer.post(_token_url(video_session))
    assert response.status_code == 409
    assert response.get_json()["error"] == "Video is not configured on this server. Chat still works."


def test_pages_other_than_the_room_load_no_livekit_code(livekit, login, client, people, video_session):
    chat_people = {"customer": UserFactory("customer"), "mechanic": UserFactory("mechanic")}
    chat_session = _accepted_session(chat_people, "chat10")
    finished_people = {"customer": UserFactory("customer"), "mechanic": UserFactory("mechanic")}
    finished = _accepted_session(finished_people, "diagnostic")
    _complete(finished, finished_people)
    customer, mechanic = login(people["customer"]), login(people["mechanic"])
    pages = [
        (client, "/"), (client, "/pricing"), (client, "/login"),
        (customer, "/customer/"), (customer, "/customer/book/vehicle"), (customer, "/customer/sessions"),
        (mechanic, "/mechanic/"), (mechanic, "/mechanic/sessions"),
        (login(chat_people["customer"]), f"/room/{chat_session.id}"),
        (login(finished_people["customer"]), f"/room/{finished.id}/summary"),
        (login(people["admin"]), f"/room/{finished.id}/summary"),
    ]
    for browser, path in pages:
        response = browser.get(path)
        assert response.status_code == 200, (path, response.status_code)
        assert "livekit" not in response.get_data(as_text=True).lower(), path
    room = customer.get(f"/room/{video_session.id}").get_data(as_text=True)
    assert "livekit-client-2.23.0.umd.min.js" in room  # the one page that does


def test_the_vendored_bundle_is_served_with_its_license_header(livekit, client):
    response = client.get("/static/js/livekit-client-2.23.0.umd.min.js")
    assert response.status_code == 200
    head = response.get_data()[:300].decode()
    assert "livekit-client 2.23.0" in head and "Apache License 2.0" in head
    response.close()


# --- webhook --------------------------------------------------------------------------------

def _livekit_event(session_id, user, event="participant_joined", event_id="EV_joined_1"):
    return {"event": event, "id": event_id, "createdAt": str(int(time.time())),
            "room": {"sid": "RM_test", "name": f"session-{session_id}"},
            "participant": {"sid": "PA_test", "identity": str(user.id), "name": user.full_name, "state": "ACTIVE"}}


def _signed(payload, secret=SECRET, key=KEY):
    """What LiveKit sends: a JWT signed with the API secret carrying the body's sha256."""
    body = json.dumps(payload)
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    token = AccessToken(key, secret).with_sha256(digest).to_jwt()
    return body, {"Authorization": token, "Content-Type": "application/webhook+json"}


def _video_events(session_id):
    return db.session.scalars(db.select(SessionEvent).where(
        SessionEvent.session_id == session_id, SessionEvent.kind.like("video_%")).order_by(SessionEvent.id)).all()


def test_a_signed_join_goes_on_the_timeline_once(livekit, client, login, people, video_session):
    body, headers = _signed(_livekit_event(video_session.id, people["customer"]))
    first = client.post("/webhooks/livekit", data=body, headers=headers)
    assert first.status_code == 200, first.get_data(as_text=True)
    assert first.get_json() == {"received": True, "outcome": "recorded"}
    replay = client.post("/webhooks/livekit", data=body, headers=headers)
    assert replay.status_code == 200
    assert replay.get_json()["outcome"] == "duplicate"

    db.session.expire_all()
    events = _video_events(video_session.id)
    assert [(e.kind, e.detail, e.actor_id) for e in events] == [
        ("video_joined", "Customer joined the video call", people["customer"].id)]

    body, headers = _signed(_livekit_event(video_session.id, people["mechanic"], "participant_left", "EV_left_1"))
    assert client.post("/webhooks/livekit", data=body, headers=headers).get_json()["outcome"] == "recorded"
    summary = login(people["admin"]).get(f"/room/{video_session.id}/summary").get_data(as_text=True)
    assert "Customer joined the video call" in summary
    assert "Mechanic left the video call" in summary


@pytest.mark.parametrize("tamper", ["wrong secret", "no header", "garbage header", "body changed", "wrong key"])
def test_a_webhook_without_a_valid_signature_is_rejected(livekit, client, people, video_session, tamper):
    event = _livekit_event(video_session.id, people["customer"])
    body, headers = _signed(event, secret="not-our-secret-but-long-enough-0123456789abc") \
        if tamper == "wrong secret" else _signed(event, key="APIsomeoneelse") if tamper == "wrong key" else _signed(event)
    if tamper == "no header":
        del headers["Authorization"]
    elif tamper == "garbage header":
        headers["Authorization"] = "Bearer not-a-jwt"
    elif tamper == "body changed":
        body = body.replace("participant_joined", "participant_left")
    response = client.post("/webhooks/livekit", data=body, headers=headers)
    assert response.status_code == 401
    assert response.get_json() == {"error": "Invalid or missing LiveKit signature."}
    assert _video_events(video_session.id) == []


def test_the_webhook_is_refused_when_livekit_is_not_configured(app, client, people, video_session):
    body, headers = _signed(_livekit_event(video_session.id, people["customer"]))
    assert client.post("/webhooks/livekit", data=body, headers=headers).status_code == 401
    assert _video_events(video_session.id) == []


def test_events_for_other_rooms_and_kinds_are_acknowledged_and_ignored(livekit, client, people, video_session):
    unknown_room = _livekit_event(video_session.id, people["customer"], event_id="EV_other_room")
    unknown_room["room"]["name"] = "lobby"
    other_kind = _livekit_event(video_session.id, people["customer"], "track_published", "EV_track")
    for event in (unknown_room, other_kind):
        body, headers = _signed(event)
        response = client.post("/webhooks/livekit", data=body, headers=headers)
        assert response.status_code == 200
        assert response.get_json()["outcome"] == "ignored"
    assert _video_events(video_session.id) == []
