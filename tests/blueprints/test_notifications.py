"""The notices area on every page of a logged-in person: their unread notices, newest first,
at most 5, with "Dismiss" and "Dismiss all" (HTMX swaps the area; a plain form post goes back
to the page); someone else's notice is not found; their own stream pushes changes."""
import pytest

from autodoctor.extensions import db
from autodoctor.services import lifecycle, notifications
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


def notice(user, words="Your appointment with Mack Mechanic starts in 1 hour, at 15:00 GMT.",
           link="/customer/appointments#appointment-7"):
    made = notifications.notify(user.id, "appointment_reminder", words, link=link)
    db.session.commit()
    return made.id


def test_the_dashboard_shows_unread_notices_with_their_link(app, login, customer):
    notice(customer)
    page = text(login(customer).get("/customer/"))
    assert 'id="notices"' in page
    assert ('<a href="/customer/appointments#appointment-7">Your appointment with Mack Mechanic starts in 1 hour, '
            'at 15:00 GMT.</a>') in page
    assert "Dismiss</button>" in page and "Dismiss all" not in page  # one notice: nothing more to dismiss


def test_five_newest_first_and_dismiss_all(app, login, customer):
    for n in range(7):
        notice(customer, f"Notice number {n}.")
    page = text(login(customer).get("/customer/appointments"))
    shown = [n for n in range(7) if f"Notice number {n}." in page]
    assert shown == [2, 3, 4, 5, 6]
    assert page.index("Notice number 6.") < page.index("Notice number 2.")
    assert "Dismiss all" in page


def test_every_role_sees_the_area_and_nobody_logged_out_does(app, login, client):
    mechanic = UserFactory("mechanic")
    db.session.commit()
    notice(mechanic, "Appointment with Cara Customer in 15 minutes, at 10:00 EST.", "/mechanic/appointments")
    assert "Appointment with Cara Customer in 15 minutes" in text(login(mechanic).get("/mechanic/"))
    assert 'id="notices"' not in text(client.get("/pricing"))


def test_dismiss_without_javascript_goes_back_to_the_page(app, login, customer):
    notice_id = notice(customer)
    client = login(customer)
    response = client.post(f"/notifications/{notice_id}/dismiss", data={"next": "/customer/appointments"})
    assert response.status_code == 303 and response.headers["Location"] == "/customer/appointments"
    assert "Mack Mechanic starts in 1 hour" not in text(client.get("/customer/appointments"))


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/", "/\\evil.example", ""])
def test_dismiss_never_sends_anyone_off_the_site(app, login, customer, next_url):
    response = login(customer).post(f"/notifications/{notice(customer)}/dismiss", data={"next": next_url})
    assert response.status_code == 303 and response.headers["Location"] == "/"


def test_dismiss_with_htmx_returns_the_area_without_it(app, login, customer):
    kept = notice(customer, "Kept notice.")
    gone = notice(customer, "Dismissed notice.")
    response = login(customer).post(f"/notifications/{gone}/dismiss", headers=HTMX)
    assert response.status_code == 200
    area = text(response)
    assert area.startswith('<div id="notices"') and "<html" not in area
    assert "Kept notice." in area and f"notice-{kept}" in area and "Dismissed notice." not in area


def test_dismiss_all_with_htmx_empties_the_area(app, login, customer):
    notice(customer, "One.")
    notice(customer, "Two.")
    client = login(customer)
    area = text(client.post("/notifications/dismiss-all", headers=HTMX))
    assert "One." not in area and "Two." not in area
    assert "One." not in text(client.get("/customer/"))


def test_someone_elses_notice_is_not_found_and_stays(app, login, customer):
    other = UserFactory("customer")
    db.session.commit()
    theirs = notice(other, "Their notice.")
    assert login(customer).post(f"/notifications/{theirs}/dismiss", headers=HTMX).status_code == 404
    assert login(customer).post("/notifications/999999/dismiss").status_code == 404
    assert "Their notice." in text(login(other).get("/customer/"))


def test_the_room_stays_light(app, login):
    """The room page leaves the area out (5 notices would add ~400 bytes gzipped)."""
    customer, mechanic = UserFactory("customer"), UserFactory("mechanic")
    db.session.commit()
    session = PaidSessionFactory(customer)
    db.session.commit()
    lifecycle.accept_request(session.current_request.id, mechanic.id)
    db.session.commit()
    notice(customer, "Not in the room.")
    page = text(login(customer).get(f"/room/{session.id}"))
    assert 'id="room"' in page and "Not in the room." not in page


def test_the_customer_pages_keep_a_stream_of_their_own_notices(app, login, customer):
    for path in ("/customer/", "/customer/appointments"):
        assert 'sse-connect="/notifications/stream"' in text(login(customer).get(path))


def test_the_stream_sends_the_area_first_then_every_change(app, login, customer):
    notice(customer, "Already there.")
    other = UserFactory("customer")
    db.session.commit()
    response = login(customer).get("/notifications/stream", buffered=False)
    assert response.mimetype == "text/event-stream"
    (first,) = read_events(response, 1)
    assert first["event"] == "notices" and "Already there." in first["data"]
    notice(other, "Not for you.")  # another person's notice never reaches this stream
    notice(customer, "Your appointment is tomorrow at 15:00 GMT.")
    (pushed,) = read_events(response, 1)
    response.close()
    assert "Your appointment is tomorrow at 15:00 GMT." in pushed["data"] and "Not for you." not in pushed["data"]
    assert "csrf_token" not in pushed["data"]  # a pushed area uses the page's CSRF header
