"""The .ics invite parsed back with icalendar: a stable UID, the sequence that a reschedule
or cancellation raises, UTC times, both people named."""
from datetime import UTC, datetime, timedelta

from icalendar import Calendar

from autodoctor.extensions import db
from autodoctor.services import invites
from tests.factories import UserFactory
from tests.services.test_appointments import NOW, TEN_AM, plan
from tests.services.test_availability import mechanic


def parse(data):
    calendar = Calendar.from_ical(data)
    (event,) = calendar.walk("VEVENT")
    return calendar, event


def test_invite_keeps_its_uid_and_raises_its_sequence(app):
    from autodoctor.services import appointments

    m = mechanic()
    customer = UserFactory("customer", "ics@example.com", "Ivy Calendar")
    appointment = appointments.hold_slot(customer.id, m, plan(), TEN_AM, now=NOW)
    db.session.commit()

    calendar, event = parse(invites.ics(appointment))
    assert str(calendar["method"]) == "REQUEST"
    assert str(event["uid"]) == f"appointment-{appointment.id}@autodoctor"
    assert int(event["sequence"]) == 0
    assert event.decoded("dtstart") == TEN_AM.replace(tzinfo=UTC)
    assert event.decoded("dtend") - event.decoded("dtstart") == timedelta(minutes=45)
    assert "Standard Video" in str(event["summary"]) and str(event["status"]) == "CONFIRMED"
    assert str(event["attendee"]) == "mailto:ics@example.com"

    appointment.starts_at += timedelta(days=1)  # what a reschedule does, with the sequence
    appointment.ends_at += timedelta(days=1)
    appointment.ics_sequence += 1
    _, moved = parse(invites.ics(appointment))
    assert str(moved["uid"]) == str(event["uid"])
    assert int(moved["sequence"]) == 1
    assert moved.decoded("dtstart") == datetime(2026, 1, 13, 15, 0, tzinfo=UTC)

    appointment.ics_sequence += 1
    calendar, cancelled = parse(invites.ics(appointment, cancelled=True))
    assert str(calendar["method"]) == "CANCEL" and str(cancelled["status"]) == "CANCELLED"
    assert int(cancelled["sequence"]) == 2 and str(cancelled["uid"]) == str(event["uid"])
