"""In-app notices: each appointment reminder is an e-mail to the customer and a notice for the
customer and the mechanic, each with the start on their own clock; a notice stays until its
person dismisses it (nobody else can), and open pages hear of every change after commit."""
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from autodoctor.extensions import db
from autodoctor.models import Appointment, Notification, OutboxEmail
from autodoctor.services import appointments, notifications
from autodoctor.services.errors import NotFound
from tests.factories import UserFactory
from tests.services.test_appointments import NOW, TEN_AM, booked, plan  # 15:00 in London, 10:00 in Toronto


def texts(user_id):
    return [(n.text, n.link) for n in notifications.unread(user_id)]


def test_each_reminder_is_an_email_and_a_notice_for_both_on_their_own_clocks(app):
    appointment_id = booked(TEN_AM, NOW)  # the customer books from London, the mechanic works in Toronto
    appointment = db.session.get(Appointment, appointment_id)
    customer, mechanic = appointment.customer, appointment.mechanic
    for minutes in (24 * 60, 60, 14):
        assert appointments.send_due_reminder(appointment_id, now=TEN_AM - timedelta(minutes=minutes))
        db.session.commit()

    subjects = db.session.scalars(sa.select(OutboxEmail.subject).where(OutboxEmail.to_address == customer.email,
                                                                       OutboxEmail.subject.like("Reminder:%")))
    assert len(list(subjects)) == 3
    to_customer = f"/customer/appointments#appointment-{appointment_id}"
    assert texts(customer.id) == [  # newest first
        (f"Your appointment with {mechanic.full_name} starts in 15 minutes, at 15:00 GMT — sign the waiver and join.",
         to_customer),
        (f"Your appointment with {mechanic.full_name} starts in 1 hour, at 15:00 GMT.", to_customer),
        (f"Your appointment with {mechanic.full_name} is tomorrow at 15:00 GMT.", to_customer),
    ]
    to_mechanic = "/mechanic/appointments?day=2026-01-12"
    assert texts(mechanic.id) == [
        (f"Appointment with {customer.full_name} in 15 minutes, at 10:00 EST.", to_mechanic),
        (f"Appointment with {customer.full_name} in 1 hour, at 10:00 EST.", to_mechanic),
        (f"Appointment with {customer.full_name} tomorrow at 10:00 EST.", to_mechanic),
    ]


def test_a_reminder_sent_by_the_worker_links_into_the_app_too(app):
    """The worker has an app context but no request: the links are built all the same."""
    appointment_id = booked(TEN_AM, NOW)
    customer_id = db.session.get(Appointment, appointment_id).customer_id
    db.session.remove()
    failures = []

    def job():
        try:
            with app.app_context():
                appointments.send_due_reminder(appointment_id, now=TEN_AM - timedelta(minutes=60))
                db.session.commit()
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(exc)

    worker = threading.Thread(target=job)
    worker.start()
    worker.join(10)
    assert not failures
    assert texts(customer_id)[0][1] == f"/customer/appointments#appointment-{appointment_id}"


def test_the_24_hour_reminder_names_the_day_when_it_is_not_tomorrow(app):
    """24 hours before 00:30 the Monday after the clocks go forward is 23:30 on Saturday."""
    customer, mechanic = UserFactory("customer"), UserFactory("mechanic", full_name="Mack Mechanic")
    starts_at = TEN_AM.replace(month=3, day=29, hour=23, minute=30)  # Mon 30 Mar, 00:30 BST
    appointment = Appointment(customer_id=customer.id, mechanic_id=mechanic.id, plan_id=plan().id, status="booked",
                              starts_at=starts_at, ends_at=starts_at + timedelta(minutes=30),
                              customer_time_zone="Europe/London")
    db.session.add(appointment)
    db.session.flush()
    notifications.appointment_reminder(appointment, 24 * 60)
    assert texts(customer.id)[0][0] == "Your appointment with Mack Mechanic is on Mon 30 Mar at 00:30 BST."


def test_a_notice_stays_until_its_person_dismisses_it(app):
    me, other = UserFactory("customer"), UserFactory("customer")
    first = notifications.notify(me.id, "test", "First")
    second = notifications.notify(me.id, "test", "Second")
    theirs = notifications.notify(other.id, "test", "Theirs")
    db.session.commit()

    with pytest.raises(NotFound):
        notifications.dismiss(me.id, theirs.id)
    with pytest.raises(NotFound):
        notifications.dismiss(me.id, 999999)
    notifications.dismiss(me.id, first.id)
    notifications.dismiss(me.id, first.id)  # a double click is not an error
    db.session.commit()
    assert [n.text for n in notifications.unread(me.id)] == ["Second"]
    assert [n.text for n in notifications.unread(other.id)] == ["Theirs"]
    assert db.session.get(Notification, second.id).read_at is None

    assert notifications.dismiss_all(me.id) == 1
    db.session.commit()
    assert notifications.unread(me.id) == [] and len(notifications.unread(other.id)) == 1


def test_at_most_five_newest_first(app):
    me = UserFactory("customer")
    for n in range(7):
        notifications.notify(me.id, "test", f"Notice {n}")
    db.session.commit()
    assert [n.text for n in notifications.unread(me.id)] == [f"Notice {n}" for n in (6, 5, 4, 3, 2)]


def test_open_pages_hear_of_a_notice_only_once_it_is_committed(app):
    me = UserFactory("customer")
    db.session.commit()
    with app.extensions["broker"].subscribe([f"user:{me.id}"]) as subscription:
        notifications.notify(me.id, "test", "Rolled back")
        db.session.rollback()
        assert subscription.get(timeout=0.1) is None
        notice = notifications.notify(me.id, "test", "Your appointment is tomorrow")
        db.session.commit()
        message = subscription.get(timeout=2)
        assert message.event == "notices"
        assert "Your appointment is tomorrow" in message.data and "Rolled back" not in message.data
        notifications.dismiss(me.id, notice.id)
        db.session.commit()
        message = subscription.get(timeout=2)
        assert "Your appointment is tomorrow" not in message.data
