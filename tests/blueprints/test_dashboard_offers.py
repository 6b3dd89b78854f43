"""Targeted offers on the mechanic dashboard: the offers fragment (highlighted, with the
reasons) only on the targeted mechanics' dashboards, the general list with only what everyone
sees, the offline hint, the stream's snapshot and live pushes, the accept refusal, and the
customer's waiting-page line."""
from datetime import datetime, timedelta

import pytest
from flask import render_template

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import ConsultSession
from autodoctor.services import routing, sweep
from tests.blueprints.test_streams import read_events
from tests.factories import UserFactory
from tests.services.test_routing import CONCERN, get_request, online, open_request

T0 = datetime(2026, 11, 24, 12, 0, 0)
AFTER = T0 + routing.WINDOW


@pytest.fixture(autouse=True)
def fixed_clock():
    clock.set(T0)


@pytest.fixture
def world(app):
    """Two targeted mechanics (the only two online); one with "Taking requests" on whose
    dashboard has not been seen yet (so offline: no offer) and one with it off; a request."""
    honda = online("Hana Honda", brands="Honda", specialties="brakes", years_experience=12)
    local = online("Lou Local")
    other = UserFactory("mechanic", full_name="Olga Other", online=True)  # toggle on, stream not seen yet
    off = UserFactory("mechanic", full_name="Otto Off")  # toggle off
    customer = UserFactory("customer")
    db.session.commit()
    request_id = open_request(customer, concern=CONCERN, make="Honda")
    return {"honda": honda, "local": local, "other": other, "off": off, "customer": customer,
            "request_id": request_id}


def dashboard(login, user):
    response = login(user).get("/mechanic/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def section(html, start, end):
    return html[html.index(start):html.index(end, html.index(start))]


def offers_part(html):
    return section(html, '<section id="offers"', "</section>")


def general_part(html):
    return section(html, '<div class="general-requests">', '<h2>Recent sessions</h2>')


def test_a_targeted_mechanic_sees_the_request_highlighted_with_the_reasons(world, login):
    html = dashboard(login, world["honda"])
    offers = offers_part(html)
    card = f'id="request-{world["request_id"]}"'
    assert card in offers and "highlight offered" in offers
    assert ("Offered to you first</b> — knows brakes · brand specialist: Honda · "
            "12 years&#39; experience · same city: Toronto · same country") in offers
    assert "online now" not in offers
    assert "other mechanics see it from 12:01 UTC" in offers
    assert card not in general_part(html)  # never twice


def test_others_do_not_see_it_until_the_window_ends(world, login):
    card = f'id="request-{world["request_id"]}"'
    html = dashboard(login, world["other"])
    assert card not in html
    assert 'id="no-requests"' in general_part(html)
    clock.set(AFTER)
    html = dashboard(login, world["other"])
    assert card in general_part(html) and card not in offers_part(html)
    html = dashboard(login, world["honda"])  # the target now has it on the general list
    assert card in general_part(html) and card not in offers_part(html)


def test_with_taking_requests_off_the_dashboard_shows_a_hint_instead(world, login):
    clock.set(AFTER)
    html = dashboard(login, world["off"])
    offers = offers_part(html)
    assert 'class="offers offline"' in offers and 'id="offline-hint"' in offers
    assert "Turn on <b>Taking requests</b>" in offers
    # The general list follows the hint in the page, so the stylesheet can hide it.
    assert html.index('<section id="offers"') < html.index('<div class="general-requests">')
    assert "css/presence-2.css" in html
    assert 'sse-swap="' in html and "offers" in html.split('sse-swap="')[1].split('"')[0].split(",")


def test_the_stylesheet_hides_the_general_list_when_offline(app):
    css = app.send_static_file("css/presence-2.css")
    css.direct_passthrough = False
    assert ".offers.offline ~ .general-requests{display:none}" in css.get_data(as_text=True)
    css.close()


def test_accepting_a_request_offered_to_others_first_is_refused_with_a_clear_message(world, login):
    client = login(world["other"])
    response = client.post(f"/mechanic/requests/{world['request_id']}/accept", headers={"HX-Request": "true"})
    assert response.status_code == 409
    assert "offered to other mechanics first — it opens to everyone at 12:01 UTC" in response.get_data(as_text=True)
    assert get_request(world["request_id"]).status == "pending"
    response = login(world["local"]).post(f"/mechanic/requests/{world['request_id']}/accept",
                                          headers={"HX-Request": "true"})
    assert response.status_code == 204 and response.headers["HX-Redirect"].startswith("/room/")


# --- the stream -------------------------------------------------------------------------------

def events_until(response, want, seconds=10):
    """Read SSE events until want(events) is true (or fail after `seconds`)."""
    return read_events(response, want=want, seconds=seconds)


def last(events, name):
    return [e for e in events if e.get("event") == name][-1]


def has(*names):
    return lambda events: all(any(e.get("event") == n for e in events) for n in names)


def test_the_snapshot_on_connect_includes_the_offers(world, login):
    card = f'id="request-{world["request_id"]}"'
    response = login(world["honda"]).get("/mechanic/stream", buffered=False)
    events = events_until(response, has("requests", "active", "offers"))
    response.close()
    offers = last(events, "offers")
    assert offers["id"].isdigit()
    assert 'id="offers"' in offers["data"] and 'hx-swap-oob="true"' in offers["data"]
    assert card in offers["data"] and "brand specialist: Honda" in offers["data"]
    assert card not in last(events, "requests")["data"]


def test_an_untargeted_snapshot_has_empty_offers(world, login):
    response = login(world["other"]).get("/mechanic/stream", buffered=False)
    events = events_until(response, has("requests", "offers"))
    response.close()
    assert f'id="request-{world["request_id"]}"' not in "".join(e["data"] for e in events)
    assert 'data-ids=""' in last(events, "offers")["data"]


def test_a_new_request_is_pushed_to_the_targets_offers_live(app, login):
    honda = online("Hana Honda", brands="Honda", years_experience=12)
    customer = UserFactory("customer")
    db.session.commit()
    response = login(honda).get("/mechanic/stream", buffered=False)
    events_until(response, has("requests", "offers"))
    request_id = open_request(customer, make="Honda")
    card = f'id="request-{request_id}"'
    events = events_until(response, lambda evs: any(e.get("event") == "offers" and card in e["data"] for e in evs))
    response.close()
    # The general-list pushes of this change never carried it.
    assert all(card not in e["data"] for e in events if e.get("event") == "requests")


def test_the_broadcast_moves_it_into_everyones_list_live(world, login):
    card = f'id="request-{world["request_id"]}"'
    response = login(world["other"]).get("/mechanic/stream", buffered=False)
    events_until(response, has("requests", "offers"))
    clock.set(AFTER)
    sweep.run_sweep()
    events = events_until(response, lambda evs: any(e.get("event") == "requests" and card in e["data"]
                                                    for e in evs))
    response.close()
    assert get_request(world["request_id"]).broadcast_at is None
    assert events


def test_the_targets_offers_are_withdrawn_when_another_target_accepts(world, login):
    card = f'id="request-{world["request_id"]}"'
    response = login(world["honda"]).get("/mechanic/stream", buffered=False)
    events_until(response, has("offers"))
    login(world["local"]).post(f"/mechanic/requests/{world['request_id']}/accept", headers={"HX-Request": "true"})
    events = events_until(response, lambda evs: any(e.get("event") == "offers" and card not in e["data"]
                                                    for e in evs))
    response.close()
    assert events


def test_turning_taking_requests_off_and_on_swaps_the_hint_live(world, login):
    client = login(world["honda"])
    response = client.get("/mechanic/stream", buffered=False)
    events_until(response, has("offers"))
    client.post("/mechanic/presence", data={"online": "0"}, headers={"HX-Request": "true"})
    events = events_until(response, lambda evs: any(e.get("event") == "offers" and "offline-hint" in e["data"]
                                                    for e in evs))
    client.post("/mechanic/presence", data={"online": "1"}, headers={"HX-Request": "true"})
    events = events_until(response, lambda evs: any(e.get("event") == "offers" and "offline-hint" not in e["data"]
                                                    for e in evs))
    response.close()
    assert f'id="request-{world["request_id"]}"' in last(events, "offers")["data"]


# --- the customer's waiting page ----------------------------------------------------------------

def test_the_customer_sees_how_the_request_is_offered(world):
    session = db.session.get(ConsultSession, get_request(world["request_id"]).session_id)
    html = render_template("customer/sessions/_status.html", session=session)
    assert "Offered to 2 mechanics who match best; everyone online sees it from 12:01 UTC." in html
    clock.set(AFTER)
    sweep.run_sweep()
    db.session.expire_all()
    session = db.session.get(ConsultSession, session.id)
    html = render_template("customer/sessions/_status.html", session=session)
    assert "Offered first to 2 mechanics who match best; now every online mechanic sees it." in html


def test_without_offers_the_waiting_page_says_nothing_about_them(app):
    customer = UserFactory("customer")
    db.session.commit()
    request_id = open_request(customer)
    session = db.session.get(ConsultSession, get_request(request_id).session_id)
    assert 'id="offer-status"' not in render_template("customer/sessions/_status.html", session=session)


def test_presenter_renders_offers_only_for_targets(world):
    from autodoctor.blueprints.mechanic.presenters import present_request_list

    request = get_request(world["request_id"])
    messages = present_request_list(request_id=request.id, session_id=request.session_id)
    channels = sorted(m.channel for m in messages if m.event == "offers")
    assert channels == sorted([f"user:{world['honda'].id}", f"user:{world['local'].id}"])
    (general,) = [m for m in messages if m.event == "requests"]
    assert general.channel == "mechanics" and f'id="request-{request.id}"' not in general.data


def test_offers_after_the_window_are_not_listed_twice(world):
    assert routing.offers_for(world["honda"].id, AFTER - timedelta(seconds=1))
    assert routing.offers_for(world["honda"].id, AFTER) == []
