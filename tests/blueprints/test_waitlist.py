"""The waitlist page: join (HTMX or a plain form post, from this page or the wizard's
"nobody online" step), the place in line and the estimate, leave; a mechanic online means
"continue booking" instead; the customer's own stream sends the status first, then every
change: a new place as people ahead leave, and "a mechanic is online" when one comes online."""
import re

import pytest
import sqlalchemy as sa

from autodoctor.extensions import db
from autodoctor.models import BookingDraft, WaitlistEntry
from autodoctor.services import waitlist
from tests.blueprints.test_streams import read_events
from tests.factories import PaidSessionFactory, UserFactory

HTMX = {"HX-Request": "true"}


def text(response):
    return response.get_data(as_text=True)


@pytest.fixture
def customer(app):
    user = UserFactory("customer")
    db.session.commit()
    return user


def mechanic(online=False):
    user = UserFactory("mechanic", full_name="Otto Online")
    if online:
        go_online(user)
    db.session.commit()
    return user


def go_online(user):
    user.mechanic_profile.online, user.mechanic_profile.presence = True, "online"
    db.session.commit()


def test_nobody_online_offers_to_join_with_an_estimate(app, login, customer):
    mechanic()
    page = text(login(customer).get("/customer/waitlist"))
    assert "No mechanic is online right now" in page
    assert 'id="waitlist-join"' in page and 'action="/customer/waitlist"' in page
    assert "estimate the wait yet" in page
    assert 'sse-connect="/customer/waitlist/stream"' in page
    assert 'id="schedule-instead"' in page and 'href="/mechanics"' in page


def test_join_without_javascript_then_the_page_shows_the_place(app, login, customer):
    me = login(customer)
    response = me.post("/customer/waitlist")
    assert response.status_code == 303 and response.headers["Location"] == "/customer/waitlist"
    page = text(me.get("/customer/waitlist"))
    assert 'id="waitlist-position">number 1</strong>' in page and "you're next" in page
    assert 'id="waitlist-leave"' in page and 'id="waitlist-join"' not in page


def test_join_with_htmx_swaps_the_status_and_the_second_customer_is_number_2(app, login, customer):
    login(customer).post("/customer/waitlist", headers=HTMX)
    second = UserFactory("customer")
    db.session.commit()
    response = login(second).post("/customer/waitlist", headers=HTMX)
    assert response.status_code == 200
    fragment = text(response)
    assert fragment.lstrip().startswith('<div class="waitlist-status waiting" id="waitlist-status"')
    assert 'data-position="2"' in fragment and "number 2" in fragment and "<html" not in fragment


def test_join_from_the_wizard_keeps_the_draft(app, login, customer):
    draft = BookingDraft(customer_id=customer.id, data={"step": "mechanic"})
    db.session.add(draft)
    db.session.commit()
    response = login(customer).post("/customer/waitlist", data={"draft_id": str(draft.id)})
    assert response.status_code == 303
    assert waitlist.waiting_entry(customer.id).draft_id == draft.id


@pytest.mark.parametrize("draft_id", ["abc", "-1", "99999999999999999999", ""])
def test_a_bad_draft_id_is_no_error(app, login, customer, draft_id):
    response = login(customer).post("/customer/waitlist", data={"draft_id": draft_id})
    assert response.status_code == 303
    assert waitlist.waiting_entry(customer.id).draft_id is None


def test_joining_twice_is_one_place(app, login, customer):
    me = login(customer)
    me.post("/customer/waitlist")
    me.post("/customer/waitlist")
    assert db.session.scalar(sa.select(sa.func.count(WaitlistEntry.id))) == 1


def test_with_a_mechanic_online_there_is_nothing_to_wait_for(app, login, customer):
    mechanic(online=True)
    me = login(customer)
    page = text(me.get("/customer/waitlist"))
    assert "A mechanic is online — continue booking" in page and 'id="waitlist-join"' not in page
    assert re.search(r'href="/customer/book[^"]*" id="waitlist-continue"', page)
    response = me.post("/customer/waitlist")
    assert response.status_code == 409
    assert "A mechanic is online — continue booking" in text(response)
    assert waitlist.waiting_entry(customer.id) is None


def test_a_customer_with_an_active_session_is_told_why(app, login, customer):
    PaidSessionFactory(customer)
    db.session.commit()
    response = login(customer).post("/customer/waitlist", headers=HTMX)
    assert response.status_code == 409
    assert 'id="waitlist-error"' in text(response) and "already have an active session" in text(response)


def test_leave(app, login, customer):
    me = login(customer)
    me.post("/customer/waitlist")
    fragment = text(me.post("/customer/waitlist/leave", headers=HTMX))
    assert 'id="waitlist-join"' in fragment
    assert waitlist.waiting_entry(customer.id) is None
    response = me.post("/customer/waitlist/leave")
    assert response.status_code == 303
    assert "You were not on the waitlist." in text(me.get("/customer/waitlist"))


def test_after_the_notice_the_page_says_continue(app, login, customer):
    me = login(customer)
    me.post("/customer/waitlist")
    otto = mechanic(online=True)
    waitlist.mechanic_came_online(otto.id)
    db.session.commit()
    page = text(me.get("/customer/waitlist"))
    assert "A mechanic is online now!" in page
    assert '<a href="/customer/book' in page  # the notice in the notices area links to the booking
    assert re.search(r'href="/customer/book[^"]*" id="waitlist-continue"', page)


def test_only_customers_have_a_waitlist(app, login, client):
    assert login(UserFactory("mechanic")).get("/customer/waitlist").status_code == 403
    assert client.get("/customer/waitlist/stream", headers={"Accept": "text/event-stream"}).status_code == 401


def test_the_stream_sends_the_status_and_notices_first_then_the_notice_without_fields(app, login, customer):
    me = login(customer)
    me.post("/customer/waitlist")
    response = me.get("/customer/waitlist/stream", buffered=False)
    assert response.mimetype == "text/event-stream"
    first, notices = read_events(response, 2)
    assert first["event"] == "waitlist" and "number 1" in first["data"]
    assert notices["event"] == "notices"
    otto = mechanic(online=True)
    waitlist.mechanic_came_online(otto.id)
    db.session.commit()
    pushed = {event["event"]: event["data"] for event in read_events(response, 2)}
    response.close()
    assert "A mechanic is online now!" in pushed["waitlist"] and 'href="/customer/book' in pushed["waitlist"]
    assert "csrf_token" not in pushed["waitlist"]  # a pushed block uses the page's CSRF header
    assert "Otto Online is online now — continue your booking." in pushed["notices"]


def test_the_one_behind_moves_up_live_when_the_first_leaves(app, login, customer):
    login(customer).post("/customer/waitlist")
    second = UserFactory("customer")
    db.session.commit()
    theirs = login(second)
    theirs.post("/customer/waitlist")
    response = theirs.get("/customer/waitlist/stream", buffered=False)
    first, _ = read_events(response, 2)
    assert "number 2" in first["data"]
    login(customer).post("/customer/waitlist/leave")
    (moved,) = read_events(response, 1)
    response.close()
    assert moved["event"] == "waitlist" and "number 1" in moved["data"] and "you're next" in moved["data"]
