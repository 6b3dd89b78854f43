"""Holding a time during checkout: one customer gets it, everyone else a clear "just taken"
with fresh times; a hold gives its time back after 15 minutes. On Postgres, 50 customers
choosing the same time at the same moment: one hold, 49 refusals, one row."""
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from autodoctor.extensions import db
from autodoctor.models import Appointment, Plan
from autodoctor.services import appointments
from autodoctor.services.appointments import SlotTaken
from autodoctor.services.errors import NotFound, ValidationError
from tests.factories import UserFactory
from tests.services.test_availability import mechanic

NOW = datetime(2026, 1, 5, 12, 0)
TEN_AM = datetime(2026, 1, 12, 15, 0)  # Monday 10:00 in Toronto


def plan(code="video15"):
    return db.session.scalar(sa.select(Plan).where(Plan.code == code))


def test_a_held_time_is_not_offered_again_until_the_hold_expires(app):
    m = mechanic()
    first, second = UserFactory("customer"), UserFactory("customer")
    held = appointments.hold_slot(first.id, m, plan(), TEN_AM, customer_time_zone="Europe/London", now=NOW)
    db.session.commit()
    assert (held.status, held.ends_at, held.hold_expires_at) == ("held", TEN_AM + timedelta(minutes=45),
                                                                  NOW + timedelta(minutes=15))
    with pytest.raises(SlotTaken) as taken:
        appointments.hold_slot(second.id, m, plan(), TEN_AM + timedelta(minutes=30), now=NOW)  # overlaps 10:00–10:45
    db.session.rollback()
    assert taken.value.message == "That time was just taken. Please pick another time."
    offered = [s.starts_at for s in taken.value.alternatives]
    assert offered and TEN_AM not in offered and TEN_AM + timedelta(minutes=30) not in offered
    assert offered[0] == datetime(2026, 1, 12, 14, 0)  # 09:00, still free

    later = NOW + timedelta(minutes=15)
    again = appointments.hold_slot(second.id, m, plan(), TEN_AM, now=later)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Appointment, held.id).status == "expired"
    assert db.session.get(Appointment, again.id).status == "held"


def test_hold_refuses_what_the_mechanic_does_not_offer(app):
    m = mechanic()
    customer = UserFactory("customer")
    with pytest.raises(SlotTaken):
        appointments.hold_slot(customer.id, m, plan(), datetime(2026, 1, 10, 15, 0), now=NOW)  # a Saturday
    db.session.rollback()
    with pytest.raises(SlotTaken):
        appointments.hold_slot(customer.id, m, plan(), NOW + timedelta(hours=1), now=NOW)  # under 2 hours' notice
    db.session.rollback()
    with pytest.raises(ValidationError):
        appointments.hold_slot(customer.id, m, plan(), TEN_AM, kind="by-pigeon", now=NOW)
    with pytest.raises(NotFound):
        appointments.hold_slot(customer.id, customer.id, plan(), TEN_AM, now=NOW)


@pytest.mark.parametrize("lock", [True, False], ids=["service-lock", "exclusion-constraint-alone"])
def test_fifty_customers_choose_the_same_time_at_once_on_postgres(pg_app, monkeypatch, lock):
    """With the service's lock, and without it (then Postgres's exclusion constraint alone
    must refuse the 49 others)."""
    from tests.services.test_concurrency_pg import race

    if not lock:
        monkeypatch.setattr(appointments, "_lock_mechanic", lambda mechanic_id: None)
    m = mechanic()
    customer_ids = [UserFactory("customer").id for _ in range(50)]
    plan_id = plan().id
    db.session.commit()

    def choose(i):
        return appointments.hold_slot(customer_ids[i], m, db.session.get(Plan, plan_id), TEN_AM, now=NOW).id

    results = race(pg_app, 50, choose)
    held = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, SlotTaken)]
    assert len(held) == 1 and len(refused) == 49, [r for r in results if not isinstance(r, (int, SlotTaken))][:3]
    assert all(TEN_AM not in [s.starts_at for s in r.alternatives] for r in refused)
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count(Appointment.id)).where(Appointment.mechanic_id == m)) == 1


def test_the_sweep_expires_holds_past_their_15_minutes(app):
    from autodoctor.services import sweep

    m = mechanic()
    held = appointments.hold_slot(UserFactory("customer").id, m, plan(), TEN_AM, now=NOW)
    db.session.commit()
    assert sweep.run_sweep(now=NOW + timedelta(minutes=14)) == 0
    assert sweep.run_sweep(now=NOW + timedelta(minutes=15)) == 1
    db.session.expire_all()
    assert db.session.get(Appointment, held.id).status == "expired"


def booked(starts_at, now, customer_email=None):
    m = mechanic()
    customer = UserFactory("customer", customer_email)
    held = appointments.hold_slot(customer.id, m, plan(), starts_at, customer_time_zone="Europe/London", now=now)
    appointments.confirm(held.id, now=now)
    db.session.commit()
    return held.id


def reminder_mails(app):
    from autodoctor.models import OutboxEmail

    return [e.subject for e in db.session.scalars(sa.select(OutboxEmail).where(
        OutboxEmail.subject.like("Reminder:%")).order_by(OutboxEmail.id))]


@pytest.mark.parametrize("via", ["job", "sweep"])
def test_reminders_at_24_hours_1_hour_and_15_minutes_once_each(app, via):
    from autodoctor.services import sweep

    appointment_id = booked(TEN_AM, NOW)

    def at(moment):
        if via == "job":
            sent = appointments.send_due_reminder(appointment_id, now=moment)
            db.session.commit()
            return sent
        return sweep.run_sweep(now=moment)

    assert not at(TEN_AM - timedelta(hours=24, seconds=1))
    assert at(TEN_AM - timedelta(hours=24))
    assert not at(TEN_AM - timedelta(hours=2)), "the 24-hour reminder goes out once"
    assert at(TEN_AM - timedelta(minutes=60))
    assert at(TEN_AM - timedelta(minutes=14))
    assert not at(TEN_AM - timedelta(minutes=5))
    assert reminder_mails(app) == ["Reminder: your AutoDoctor appointment is tomorrow",
                                   "Reminder: your AutoDoctor appointment is in 1 hour",
                                   "Reminder: your AutoDoctor appointment is in 15 minutes"]


@pytest.mark.parametrize("ahead, expected", [
    (timedelta(hours=2), ["in 1 hour", "in 15 minutes"]),  # the minimum notice for customers
    (timedelta(minutes=30), ["in 15 minutes"]),  # e.g. a time an admin arranged
])
def test_a_late_booking_gets_only_the_reminders_still_ahead(app, ahead, expected):
    from autodoctor.services import sweep

    customer, m = UserFactory("customer"), mechanic()
    appointment = Appointment(customer_id=customer.id, mechanic_id=m, plan_id=plan().id, status="held",
                              starts_at=TEN_AM, ends_at=TEN_AM + timedelta(minutes=45),
                              hold_expires_at=TEN_AM - ahead + timedelta(minutes=15))
    db.session.add(appointment)
    db.session.commit()
    appointments.confirm(appointment.id, now=TEN_AM - ahead)
    db.session.commit()
    for moment in (TEN_AM - ahead, TEN_AM - timedelta(minutes=60), TEN_AM - timedelta(minutes=15)):
        sweep.run_sweep(now=moment)
    assert reminder_mails(app) == [f"Reminder: your AutoDoctor appointment is {when}" for when in expected]


def test_a_lost_job_is_caught_by_the_sweep_and_the_hold_must_still_be_live(app):
    from autodoctor.services import sweep
    from autodoctor.services.errors import Conflict

    appointment_id = booked(TEN_AM, NOW)
    # No job ran at 24 hours (the worker was down); the sweep an hour later sends it.
    assert sweep.run_sweep(now=TEN_AM - timedelta(hours=23)) == 1
    assert reminder_mails(app) == ["Reminder: your AutoDoctor appointment is tomorrow"]
    held = appointments.hold_slot(UserFactory("customer").id, mechanic(), plan(), TEN_AM, now=NOW)
    db.session.commit()
    with pytest.raises(Conflict, match="run out"):
        appointments.confirm(held.id, now=NOW + timedelta(minutes=15))
    assert appointment_id


def checkout(app, appointment):
    from autodoctor.models import Payment
    from autodoctor.services import payments

    url = payments.start_appointment_checkout(appointment, lambda pid: f"http://localhost/ok/{pid}", "http://x/")
    db.session.commit()
    return url, db.session.scalar(sa.select(Payment).where(Payment.appointment_id == appointment.id))


def pay(app, payment):
    from tests.factories import checkout_completed_event, signed

    payload, headers = signed(checkout_completed_event(payment))
    response = app.test_client().post("/webhooks/stripe", data=payload, headers=headers)
    assert response.status_code == 200
    db.session.expire_all()
    return response.get_json()["outcome"]


@pytest.mark.parametrize("kind, amount", [("online", 2999), ("in_person", 1500)])
def test_paying_for_a_held_time_books_it_through_the_same_webhook(app, kind, amount):
    from autodoctor import clock
    from autodoctor.models import LedgerEntry, OutboxEmail

    clock.set(NOW)
    customer = UserFactory("customer", "booker@example.com")
    appointment = appointments.hold_slot(customer.id, mechanic(), plan(), TEN_AM, kind=kind)
    url, payment = checkout(app, appointment)
    assert url.endswith(f"/customer/checkout/{payment.id}/test") and payment.amount_cents == amount
    assert pay(app, payment) == "fulfilled"
    assert db.session.get(Appointment, appointment.id).status == "booked"
    legs = db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.payment_id == payment.id)).all()
    assert sorted(e.amount_cents for e in legs) == [-amount, amount]
    receipt = db.session.scalar(sa.select(OutboxEmail).where(OutboxEmail.subject.like("Receipt:%")))
    assert "Your appointment is booked" in receipt.body_text
    assert ("balance is paid after the service" in receipt.body_text) == (kind == "in_person")


def test_payment_after_the_hold_ran_out_books_if_free_and_refunds_if_taken(app):
    from autodoctor import clock
    from autodoctor.models import LedgerEntry, Payment

    clock.set(NOW)
    m = mechanic()
    slow = appointments.hold_slot(UserFactory("customer").id, m, plan(), TEN_AM)
    _, slow_payment = checkout(app, slow)
    clock.set(NOW + timedelta(minutes=20))  # the hold ran out; the time is still free
    assert pay(app, slow_payment) == "fulfilled"
    assert db.session.get(Appointment, slow.id).status == "booked"

    clock.set(NOW)
    slower = appointments.hold_slot(UserFactory("customer").id, m, plan(), TEN_AM + timedelta(hours=2))
    _, slower_payment = checkout(app, slower)
    clock.set(NOW + timedelta(minutes=20))
    appointments.hold_slot(UserFactory("customer").id, m, plan(), TEN_AM + timedelta(hours=2))  # taken meanwhile
    db.session.commit()
    assert pay(app, slower_payment) == "no-op"
    assert db.session.get(Payment, slower_payment.id).status == "refunded"
    assert db.session.get(Appointment, slower.id).status == "expired"
    legs = db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.payment_id == slower_payment.id)).all()
    assert sum(e.amount_cents for e in legs) == 0 and {e.kind for e in legs} == {"payment", "refund"}
    assert any("the time was taken" in e.memo for e in legs)


@pytest.mark.parametrize("before, refund, credit, platform, mechanic_gets", [
    (timedelta(hours=24), 2499, 0, 500, 0),           # 24 h+: all back but the $5 fee
    (timedelta(hours=23, minutes=59), 2249, 0, 150, 600),  # 2–24 h: 75% back; 25% split 20/80
    (timedelta(hours=2), 2249, 0, 150, 600),
    (timedelta(hours=1, minutes=59), 0, 1500, 300, 1199),  # under 2 h: 50% as credit
])
def test_cancellation_tiers_move_the_money_and_balance(app, before, refund, credit, platform, mechanic_gets):
    from autodoctor import clock
    from autodoctor.models import LedgerEntry
    from autodoctor.services import money

    clock.set(NOW)
    customer, m = UserFactory("customer"), mechanic()
    appointment = appointments.hold_slot(customer.id, m, plan(), TEN_AM)
    _, payment = checkout(app, appointment)
    assert pay(app, payment) == "fulfilled"
    clock.set(TEN_AM - before)
    assert appointments.cancel(appointment.id, customer.id) == (refund, credit)
    db.session.commit()
    rows = db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.payment_id == payment.id)).all()
    by_account = {}
    for row in rows:
        by_account[row.account] = by_account.get(row.account, 0) + row.amount_cents
    assert sum(by_account.values()) == 0 and by_account[money.ESCROW] == 0
    assert by_account[money.CUSTOMER] == -2999 + refund
    assert by_account.get(money.credit_account(customer.id), 0) == credit
    assert by_account.get(money.PLATFORM, 0) == platform
    assert by_account.get(money.mechanic_account(m), 0) == mechanic_gets
    assert db.session.get(Appointment, appointment.id).status == "cancelled"
    assert db.session.get(Appointment, appointment.id).ics_sequence == 1
    with pytest.raises(Exception, match="not booked"):
        appointments.cancel(appointment.id, customer.id)


def test_no_show_after_ten_minutes_gives_half_as_credit(app):
    from autodoctor import clock
    from autodoctor.services import money
    from autodoctor.services.errors import Conflict

    clock.set(NOW)
    customer, m = UserFactory("customer"), mechanic()
    appointment = appointments.hold_slot(customer.id, m, plan(), TEN_AM)
    _, payment = checkout(app, appointment)
    pay(app, payment)
    with pytest.raises(Conflict, match="10 minutes"):
        appointments.mark_no_show(appointment.id, m, now=TEN_AM + timedelta(minutes=9))
    db.session.rollback()
    with pytest.raises(NotFound):
        appointments.mark_no_show(appointment.id, customer.id, now=TEN_AM + timedelta(minutes=10))
    assert appointments.mark_no_show(appointment.id, m, now=TEN_AM + timedelta(minutes=10)) == (0, 1500)
    db.session.commit()
    assert db.session.get(Appointment, appointment.id).status == "no_show"
    assert money.held_for_payment(payment.id) == 0


def test_reschedule_keeps_the_invite_uid_raises_its_sequence_and_restarts_reminders(app):
    from autodoctor import clock
    from autodoctor.services import invites
    from tests.services.test_invites import parse

    clock.set(NOW)
    customer, m = UserFactory("customer"), mechanic()
    appointment = appointments.hold_slot(customer.id, m, plan(), TEN_AM)
    _, payment = checkout(app, appointment)
    pay(app, payment)
    other = appointments.hold_slot(UserFactory("customer").id, m, plan(), TEN_AM + timedelta(hours=2))
    appointments.confirm(other.id)  # someone else's booking
    db.session.commit()
    _, before = parse(invites.ics(db.session.get(Appointment, appointment.id)))

    clock.set(TEN_AM - timedelta(hours=20))
    assert appointments.send_due_reminder(appointment.id) == 1440  # the 24-hour reminder has gone out
    db.session.commit()
    with pytest.raises(SlotTaken):
        appointments.reschedule(appointment.id, customer.id, TEN_AM + timedelta(hours=2))
    db.session.rollback()
    # Half an hour later overlaps its own current time only: allowed.
    moved = appointments.reschedule(appointment.id, customer.id, TEN_AM + timedelta(minutes=30) + timedelta(days=1))
    db.session.commit()
    assert (moved.starts_at, moved.ics_sequence, moved.last_reminder_minutes) == (
        TEN_AM + timedelta(days=1, minutes=30), 1, None)
    _, after = parse(invites.ics(moved))
    assert str(after["uid"]) == str(before["uid"]) and int(after["sequence"]) == int(before["sequence"]) + 1
    same_day = appointments.reschedule(appointment.id, customer.id, TEN_AM + timedelta(days=1))
    db.session.commit()
    assert same_day.ics_sequence == 2

    clock.set(TEN_AM + timedelta(days=1) - timedelta(hours=1, minutes=59))
    with pytest.raises(Exception, match="up to 2 hours"):
        appointments.reschedule(appointment.id, customer.id, TEN_AM + timedelta(days=2))


def test_booking_confirmation_arrives_over_smtp_with_a_valid_invite(app, smtp_server):
    from icalendar import Calendar

    from autodoctor import clock

    clock.set(NOW)
    customer = UserFactory("customer", "invitee@example.com", "Ivy Invitee")
    appointment = appointments.hold_slot(customer.id, mechanic(), plan(), TEN_AM, customer_time_zone="Europe/London")
    _, payment = checkout(app, appointment)
    assert pay(app, payment) == "fulfilled"
    (message,) = [m for m in smtp_server if m["Subject"].startswith("Booked:")]
    assert message["To"] == "invitee@example.com"
    body = message.get_payload()[0].get_payload(decode=True).decode()
    assert "Monday 12 January 2026, 15:00 GMT" in body  # 10:00 in Toronto, shown in London time
    (invite,) = [part for part in message.walk() if part.get_content_type() == "text/calendar"]
    (event,) = Calendar.from_ical(invite.get_payload(decode=True)).walk("VEVENT")
    assert str(event["uid"]) == f"appointment-{appointment.id}@autodoctor" and int(event["sequence"]) == 0
