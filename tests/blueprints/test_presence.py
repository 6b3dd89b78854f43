"""The "Taking requests" switch (HTMX swap and plain form post), the dashboard stream as the
presence heartbeat (on connect and at every keepalive, never breaking the stream), and the
presence stream: badges of the mechanics a page names first, then every change pushed out
of band — going online or offline, becoming busy in a session."""
import re
from datetime import datetime, timedelta

import pytest

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import MechanicProfile
from autodoctor.services import lifecycle, presence, sweep
from tests.blueprints.test_streams import read_events
from tests.factories import PaidSessionFactory, UserFactory

T0 = datetime(2026, 11, 24, 12, 0, 0)
HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _no_waitlist_job(monkeypatch):
    import sys
    import types

    fake = types.ModuleType("autodoctor.jobs.waitlist")
    fake.mechanic_came_online_job = lambda mechanic_id: None
    monkeypatch.setitem(sys.modules, "autodoctor.jobs.waitlist", fake)


def next_event(response, name, chunks=20):
    """Read the stream until an event called `name` (other events and comments pass by)."""
    for _ in range(chunks):
        event = read_events(response, 1)[0]
        if event.get("event") == name:
            return event
    raise AssertionError(f"no {name!r} event in {chunks} messages")


def keepalives(response, count, chunks=20):
    """Read the stream until `count` keepalive comments went out (events pass by)."""
    it = iter(response.response)
    for _ in range(chunks):
        if next(it).startswith(b": keepalive"):
            count -= 1
            if not count:
                return
    raise AssertionError("the keepalives stopped")


def toggle_on(mechanic_id):
    db.session.expire_all()
    return db.session.get(MechanicProfile, mechanic_id).online


def test_the_dashboard_shows_the_switch_off_with_its_reason(app, login):
    mechanic = UserFactory("mechanic")
    db.session.commit()
    html = login(mechanic).get("/mechanic/").get_data(as_text=True)
    assert 'id="presence-toggle"' in html
    assert "Taking requests" in html
    assert 'aria-checked="false"' in html
    assert "Offline — turn on to get requests" in html
    assert re.search(r'sse-swap="[^"]*\bpresence\b', html)  # the dashboard stream swaps the switch
    assert "css/presence-2.css" in html


def test_htmx_switch_on_answers_with_the_fragment_online(app, login):
    clock.set(T0)
    mechanic = UserFactory("mechanic")
    db.session.commit()
    client = login(mechanic)
    client.get("/mechanic/stream", buffered=False).close()  # the dashboard is open: seen
    response = client.post("/mechanic/presence", data={"online": "1"}, headers=HTMX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="presence-toggle"')
    assert 'aria-checked="true"' in html and "Online — you get new requests" in html
    assert 'name="online" value="0"' in html  # the next tap turns it off
    assert presence.status(mechanic.id) == "online"
    response = client.post("/mechanic/presence", data={"online": "0"}, headers=HTMX)
    assert "Offline — turn on to get requests" in response.get_data(as_text=True)
    assert presence.status(mechanic.id) == "offline"


def test_switch_on_with_no_dashboard_stream_says_to_keep_it_open(app, login):
    mechanic = UserFactory("mechanic")
    db.session.commit()
    response = login(mechanic).post("/mechanic/presence", data={"online": "1"}, headers=HTMX)
    assert "Offline — keep this dashboard open to get requests" in response.get_data(as_text=True)
    assert toggle_on(mechanic.id)


def test_without_javascript_the_form_posts_and_comes_back_to_the_dashboard(app, login):
    mechanic = UserFactory("mechanic")
    db.session.commit()
    client = login(mechanic)
    response = client.post("/mechanic/presence", data={"online": "1"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/mechanic/")
    assert toggle_on(mechanic.id)
    html = client.get("/mechanic/").get_data(as_text=True)
    assert 'aria-checked="true"' in html
    assert 'name="csrf_token"' in html  # the page's form works without HTMX's header


@pytest.mark.parametrize("value", ["", "yes", "2"])
def test_bad_input_gets_a_clear_message(app, login, value):
    mechanic = UserFactory("mechanic")
    db.session.commit()
    client = login(mechanic)
    response = client.post("/mechanic/presence", data={"online": value}, headers=HTMX)
    assert response.status_code == 422
    assert "Choose on or off" in response.get_data(as_text=True)
    response = client.post("/mechanic/presence", data={"online": value}, follow_redirects=True)
    assert response.status_code == 200
    assert "Choose on or off" in response.get_data(as_text=True)
    assert not toggle_on(mechanic.id)


def test_only_mechanics_have_the_switch(app, login, client):
    customer = UserFactory("customer")
    db.session.commit()
    assert login(customer).post("/mechanic/presence", data={"online": "1"}).status_code == 403
    response = client.post("/mechanic/presence", data={"online": "1"})
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]


def test_the_dashboard_stream_is_the_heartbeat(app, login):
    clock.set(T0)
    app.config["PRESENCE_TIMEOUT_SECONDS"] = 3  # a beat every second
    mechanic = UserFactory("mechanic")
    db.session.commit()
    client = login(mechanic)
    client.post("/mechanic/presence", data={"online": "1"})
    assert presence.status(mechanic.id) == "offline"
    response = client.get("/mechanic/stream", buffered=False)
    switch = next_event(response, "presence")  # subscribed, then seen: online, pushed live
    assert "Online — you get new requests" in switch["data"]
    assert 'hx-swap-oob="true"' in switch["data"] and "csrf_token" not in switch["data"]
    assert presence.status(mechanic.id) == "online"
    clock.set(T0 + timedelta(seconds=2))
    keepalives(response, 1)
    next(iter(response.response))  # the beat runs once the keepalive went out, when the next chunk is asked for
    response.close()
    db.session.expire_all()
    assert db.session.get(MechanicProfile, mechanic.id).last_seen_at == T0 + timedelta(seconds=2)


def test_a_reconnect_gets_the_switch_as_it_is_now(app, login):
    mechanic = UserFactory("mechanic")
    db.session.commit()
    client = login(mechanic)
    response = client.get("/mechanic/stream", buffered=False)
    first = next_event(response, "requests")
    response.close()
    presence.set_online(mechanic.id, False)
    db.session.commit()
    response = client.get("/mechanic/stream", headers={"Last-Event-ID": first["id"]}, buffered=False)
    switch = next_event(response, "presence")
    response.close()
    assert "Offline — turn on to get requests" in switch["data"]


def test_a_failing_beat_never_breaks_the_stream(app, login, monkeypatch, caplog):
    app.config["PRESENCE_TIMEOUT_SECONDS"] = 3
    mechanic = UserFactory("mechanic")
    db.session.commit()
    response = login(mechanic).get("/mechanic/stream", buffered=False)
    next_event(response, "requests")

    def broken(mechanic_id):
        raise RuntimeError("database went away")

    monkeypatch.setattr(presence, "seen", broken)
    keepalives(response, 3)
    response.close()
    assert "stream keepalive callback failed" in caplog.text


def test_the_switch_follows_changes_live_on_the_dashboard_stream(app, login):
    clock.set(T0)
    mechanic = UserFactory("mechanic")
    db.session.commit()
    client = login(mechanic)
    client.post("/mechanic/presence", data={"online": "1"})
    response = client.get("/mechanic/stream", buffered=False)
    assert "Online" in next_event(response, "presence")["data"]
    clock.set(T0 + timedelta(seconds=app.config["PRESENCE_TIMEOUT_SECONDS"] + 1))
    sweep.run_sweep()  # e.g. another dashboard of theirs went quiet: offline
    pushed = next_event(response, "presence")
    response.close()
    assert "Offline — keep this dashboard open" in pushed["data"]


def test_presence_stream_sends_the_named_badges_first(app, login):
    clock.set(T0)
    online, offline = UserFactory("mechanic"), UserFactory("mechanic")
    customer = UserFactory("customer")
    db.session.commit()
    presence.seen(online.id)
    presence.set_online(online.id, True)
    db.session.commit()
    response = login(customer).get(f"/presence/stream?ids={offline.id},{online.id},x,-3,{online.id},99999",
                                   buffered=False)
    assert response.mimetype == "text/event-stream"
    first, second = read_events(response, 2)
    response.close()
    assert first["event"] == second["event"] == "presence"
    assert f'id="presence-{online.id}"' in first["data"] and 'class="presence online"' in first["data"]
    assert f'id="presence-{offline.id}"' in second["data"] and "Offline" in second["data"]
    assert 'hx-swap-oob="true"' in first["data"]


def test_presence_stream_without_ids_or_with_garbage_sends_no_snapshot(app, login):
    customer = UserFactory("customer")
    db.session.commit()
    client = login(customer)
    for query in ("", "?ids=", "?ids=%00%ff,abc," + ",".join(["1" * 40] * 3)):
        response = client.get("/presence/stream" + query, buffered=False)
        assert response.status_code == 200
        assert next(iter(response.response)).startswith(b": connected")
        response.close()


def test_presence_stream_needs_a_login(app, client):
    assert client.get("/presence/stream", headers={"Accept": "text/event-stream"}).status_code == 401


def test_presence_changes_and_busy_are_pushed_to_every_badge(app, login):
    clock.set(T0)
    mechanic = UserFactory("mechanic", full_name="Mia Wrench")
    customer, viewer = UserFactory("customer"), UserFactory("customer")
    db.session.commit()
    response = login(viewer).get("/presence/stream", buffered=False)
    next(iter(response.response))
    presence.seen(mechanic.id)
    presence.set_online(mechanic.id, True)
    db.session.commit()
    went_online = read_events(response, 1)[0]
    assert f'id="presence-{mechanic.id}"' in went_online["data"] and "presence online" in went_online["data"]
    request_id = PaidSessionFactory(customer).current_request.id
    db.session.commit()
    lifecycle.accept_request(request_id, mechanic.id)
    db.session.commit()
    busy = read_events(response, 1)[0]
    assert "presence busy" in busy["data"]
    presence.set_online(mechanic.id, False)
    db.session.commit()
    still_busy = read_events(response, 1)[0]
    response.close()
    assert "presence busy" in still_busy["data"]  # in a session, whatever the switch says
