"""The appointment pages: the customer's list in their own zone with "Add to calendar",
cancel (with the tier's amounts stated first), reschedule and "Join" 15 minutes before; the
mechanic's day and week views in the mechanic's zone with "Mark no-show" after 10 minutes.
(The waiver and joining on the day: test_appointment_day_pages.py.)"""
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from icalendar import Calendar

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import Appointment
from autodoctor.services import appointments
from tests.factories import UserFactory
from tests.services.test_appointments import checkout, pay, plan
from tests.services.test_availability import mechanic

NOW = datetime(2026, 1, 5, 12, 0)  # Monday
TEN_AM = datetime(2026, 1, 12, 15, 0)  # Monday 12 Jan: 10:00 in Toronto, 15:00 in London


@pytest.fixture(autouse=True)
def fixed_clock():
    clock.set(NOW)
    yield
    clock.reset()


def booked(app, starts_at=TEN_AM, customer=None, mechanic_id=None, zone="Europe/London"):
    """A paid, booked appointment (through checkout and the signed webhook)."""
    customer = customer or UserFactory("customer")
    mechanic_id = mechanic_id or mechanic()
    appointment = appointments.hold_slot(customer.id, mechanic_id, plan(), starts_at, customer_time_zone=zone)
    _, payment = checkout(app, appointment)
    assert pay(app, payment) == "fulfilled"
    return customer, mechanic_id, db.session.get(Appointment, appointment.id)


def text(response):
    return response.get_data(as_text=True)


def test_the_customer_sees_upcoming_appointments_in_their_own_zone(app, login):
    customer, m, appointment = booked(app)
    page = text(login(customer).get("/customer/appointments"))
    assert f'id="appointment-{appointment.id}"' in page
    assert "Mon 12 Jan 2026, 15:00–15:45" in page and "GMT" in page  # London, not Toronto or UTC labels
    assert "Standard Video" in page and appointment.mechanic.full_name in page and "Online" in page
    assert "Add to calendar" in page and "Reschedule" in page and "Cancel" in page
    assert "Join" not in page  # only from 15 minutes before


def test_an_empty_list_says_so(app, login):
    page = text(login(UserFactory("customer")).get("/customer/appointments"))
    assert "No upcoming appointments." in page and "Your past appointments will appear here." in page


def test_join_appears_fifteen_minutes_before_the_start(app, login):
    customer, _, appointment = booked(app)
    client = login(customer)
    clock.set(TEN_AM - timedelta(minutes=16))
    page = text(client.get("/customer/appointments"))
    assert "Sign the waiver and join" not in page and "From 15 minutes before the start" in page
    clock.set(TEN_AM - timedelta(minutes=15))
    page = text(client.get("/customer/appointments"))
    assert "Sign the waiver and join</a>" in page
    assert "Reschedule" not in page  # under 2 hours: it can no longer be moved


def test_add_to_calendar_downloads_an_invite_that_parses(app, login):
    customer, _, appointment = booked(app)
    response = login(customer).get(f"/customer/appointments/{appointment.id}.ics")
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    assert "attachment" in response.headers["Content-Disposition"]
    (event,) = Calendar.from_ical(response.data).walk("VEVENT")
    assert str(event["uid"]) == f"appointment-{appointment.id}@autodoctor"
    assert event.decoded("dtstart").replace(tzinfo=None) == TEN_AM


@pytest.mark.parametrize("before, says, refund, credit", [
    (timedelta(hours=30), "You get <strong>$24.99</strong> back to your card", 2499, 0),
    (timedelta(hours=5), "You get <strong>$22.49</strong> back to your card", 2249, 0),
    (timedelta(hours=1), "you get <strong>$15.00</strong>\n      as account credit", 0, 1500),
])
def test_cancel_states_the_tier_then_cancels(app, login, before, says, refund, credit):
    customer, _, appointment = booked(app)
    client = login(customer)
    clock.set(TEN_AM - before)
    confirm = text(client.get(f"/customer/appointments/{appointment.id}/cancel"))
    assert "You paid $29.99." in confirm and says in confirm
    response = client.post(f"/customer/appointments/{appointment.id}/cancel", follow_redirects=True)
    page = text(response)
    if refund:
        assert f"Appointment cancelled. ${refund // 100}.{refund % 100:02d} will be refunded to your card" in page
    else:
        assert "Appointment cancelled. $15.00 has been added to your account as credit" in page
    db.session.expire_all()
    assert db.session.get(Appointment, appointment.id).status == "cancelled"
    assert "No upcoming appointments." in page and "cancelled" in page
    # cancelling twice: a clear message, nothing moves again
    again = text(client.post(f"/customer/appointments/{appointment.id}/cancel", follow_redirects=True))
    assert "not booked" in again


def test_reschedule_offers_the_mechanics_free_times_and_moves_it(app, login):
    customer, _, appointment = booked(app)
    client = login(customer)
    page = text(client.get(f"/customer/appointments/{appointment.id}/reschedule"))
    assert "Monday 12 January" in page
    assert 'value="2026-01-12T15:00"' not in page  # its own time is not offered as a new one
    assert 'value="2026-01-12T16:00"' in page  # 11:00 Toronto = 16:00 London, 45 minutes free
    response = client.post(f"/customer/appointments/{appointment.id}/reschedule",
                           data={"starts_at": "2026-01-13T16:00"}, follow_redirects=True)
    assert "Moved to Tue 13 Jan, 16:00 (GMT)" in text(response)
    db.session.expire_all()
    moved = db.session.get(Appointment, appointment.id)
    assert (moved.starts_at, moved.ics_sequence, moved.status) == (datetime(2026, 1, 13, 16, 0), 1, "booked")
    assert "Tue 13 Jan 2026, 16:00–16:45" in text(client.get("/customer/appointments"))


def test_reschedule_to_a_taken_time_says_so_with_alternatives(app, login):
    customer, m, appointment = booked(app)
    booked(app, TEN_AM + timedelta(days=1), mechanic_id=m)  # someone has Tuesday 10:00
    response = login(customer).post(f"/customer/appointments/{appointment.id}/reschedule",
                                    data={"starts_at": "2026-01-13T15:00"})
    assert response.status_code == 409
    page = text(response)
    assert "That time was just taken. Please pick another time." in page and 'id="alternatives"' in page
    db.session.expire_all()
    assert db.session.get(Appointment, appointment.id).starts_at == TEN_AM


def test_other_customers_and_mechanics_get_404(app, login):
    _, _, appointment = booked(app)
    other = login(UserFactory("customer"))
    for path in (f"/customer/appointments/{appointment.id}.ics", f"/customer/appointments/{appointment.id}/cancel",
                 f"/customer/appointments/{appointment.id}/reschedule"):
        assert other.get(path).status_code == 404
    assert other.post(f"/customer/appointments/{appointment.id}/cancel").status_code == 404
    assert other.post(f"/customer/appointments/{appointment.id}/reschedule",
                      data={"starts_at": "2026-01-13T16:00"}).status_code == 404
    assert f"appointment-{appointment.id}" not in text(other.get("/customer/appointments"))
    stranger = login(UserFactory("mechanic"))
    assert stranger.post(f"/mechanic/appointments/{appointment.id}/no-show").status_code == 404
    db.session.expire_all()
    assert db.session.get(Appointment, appointment.id).status == "booked"


def test_the_mechanic_sees_day_and_week_in_their_own_zone(app, login):
    customer, m, appointment = booked(app)
    _, _, wednesday = booked(app, datetime(2026, 1, 14, 19, 30), mechanic_id=m)  # Wed 14:30 Toronto
    client = login(db.session.get(type(customer), m))
    day = text(client.get("/mechanic/appointments?view=day&day=2026-01-12"))
    assert "Monday 12 January 2026" in day and "10:00–10:45" in day and customer.full_name in day
    assert "Standard Video" in day and "Online" in day and "America/Toronto" in day
    assert f"appointment-{wednesday.id}" not in day
    week = text(client.get("/mechanic/appointments?view=week&day=2026-01-14"))
    assert f"appointment-{appointment.id}" in week and f"appointment-{wednesday.id}" in week and "14:30–15:15" in week
    assert "Sunday 18 January 2026" in week and "No appointments." in week
    today = text(client.get("/mechanic/appointments"))
    assert "Monday 05 January 2026" in today and "No booked appointments on this day." in today


def test_mark_no_show_appears_ten_minutes_after_the_start(app, login):
    customer, m, appointment = booked(app)
    client = login(db.session.get(type(customer), m))
    url = "/mechanic/appointments?day=2026-01-12"
    clock.set(TEN_AM + timedelta(minutes=9))
    page = text(client.get(url))
    assert "Mark no-show" not in page and "you can mark a no-show from 10:10" in page
    clock.set(TEN_AM + timedelta(minutes=10))
    assert "Mark no-show" in text(client.get(url))
    clock.set(TEN_AM + timedelta(hours=3))
    assert 'id="awaiting-no-show"' in text(client.get("/mechanic/appointments?day=2026-01-20"))  # any day shown
    response = client.post(f"/mechanic/appointments/{appointment.id}/no-show", follow_redirects=True)
    assert f"Marked as a no-show. {customer.full_name} gets 50% as account credit." in text(response)
    db.session.expire_all()
    assert db.session.get(Appointment, appointment.id).status == "no_show"
    assert "Mark no-show" not in text(client.get(url))
    assert "no-show" in text(login(customer).get("/customer/appointments"))


def test_mark_no_show_is_gone_after_24_hours(app, login):
    customer, m, appointment = booked(app)
    clock.set(TEN_AM + timedelta(hours=24))
    page = text(login(db.session.get(type(customer), m)).get("/mechanic/appointments?day=2026-01-12"))
    assert f"appointment-{appointment.id}" in page and "Mark no-show" not in page
    assert db.session.scalar(sa.select(Appointment.status).where(Appointment.id == appointment.id)) == "booked"
