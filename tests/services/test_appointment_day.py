"""The day of an appointment: from 15 minutes before the start the customer signs the waiver
(typed name + drawn signature) and the room opens as a session with the booked mechanic, the
payment moving into its escrow; an in-person visit signs on the shop's tablet and its deposit
is paid out when the visit is done; an "any available" booking is matched again 30 minutes
before the start."""
import base64
import io
from datetime import timedelta

import pytest
import sqlalchemy as sa
from PIL import Image, ImageDraw

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import Appointment, LedgerEntry, TimeOff, User, Waiver
from autodoctor.services import appointments, lifecycle, money
from autodoctor.services.errors import Conflict, NotFound
from autodoctor.services.waivers import WaiverErrors
from tests.factories import UserFactory
from tests.services.test_appointments import NOW, TEN_AM, checkout, pay, plan
from tests.services.test_availability import mechanic


def signature(blank=False):
    img = Image.new("RGBA", (600, 200), (0, 0, 0, 0))
    if not blank:
        ImageDraw.Draw(img).line([(40, 150), (200, 60), (380, 140), (560, 50)], fill=(17, 17, 17, 255), width=4)
    out = io.BytesIO()
    img.save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def booked_and_paid(app, kind="online", customer=None, mechanic_id=None, any_mechanic=False):
    clock.set(NOW)
    customer = customer or UserFactory("customer", full_name="Cara Customer")
    m = mechanic_id or mechanic()
    appointment = appointments.hold_slot(customer.id, m, plan(), TEN_AM, kind=kind, any_mechanic=any_mechanic)
    _, payment = checkout(app, appointment)
    assert pay(app, payment) == "fulfilled"
    clock.reset()
    return db.session.get(Appointment, appointment.id), payment, customer, db.session.get(User, m)


def sign(appointment, signer, at, name="Cara Customer", drawn=None):
    return appointments.sign_waiver(appointment.id, signer, name, drawn or signature(), "203.0.113.9",
                                    "Mozilla/5.0 (Tablet)", now=at)


def test_the_waiver_opens_15_minutes_before_and_then_the_room_with_the_booked_mechanic(app):
    appointment, payment, customer, m = booked_and_paid(app)
    opens = TEN_AM - timedelta(minutes=15)
    with pytest.raises(Conflict, match="from 15 minutes before"):
        sign(appointment, customer, opens - timedelta(seconds=1))
    with pytest.raises(Conflict, match="Sign the waiver first"):
        appointments.open_room(appointment.id, customer.id, now=opens)
    with pytest.raises(WaiverErrors) as bad:
        sign(appointment, customer, opens, name="Someone Else", drawn=signature(blank=True))
    assert bad.value.errors == {"signed_name": "Type the name on the booking: Cara Customer.",
                                "signature": "Sign in the box with your finger or mouse."}
    with pytest.raises(WaiverErrors, match="highlighted") as garbled:
        sign(appointment, customer, opens, drawn="data:image/png;base64,bm90IGEgcG5n")
    assert "could not be read" in garbled.value.errors["signature"]
    with pytest.raises(NotFound):
        sign(appointment, UserFactory("customer"), opens)

    waiver = sign(appointment, customer, opens, name="  cara   customer ")
    db.session.commit()
    assert (waiver.version, waiver.signed_name, waiver.signed_on, waiver.ip_address, waiver.user_agent) == (
        "2026-11", "cara customer", "customer", "203.0.113.9", "Mozilla/5.0 (Tablet)")
    assert waiver.signature_png.startswith(b"\x89PNG") and waiver.user_id == customer.id
    assert sign(appointment, customer, opens).id == waiver.id  # a double submit keeps the first

    session = appointments.open_room(appointment.id, customer.id, now=opens)
    db.session.commit()
    assert (session.status, session.mechanic_id, session.minutes, session.intake_id) == (
        "waiting", m.id, 45, appointment.intake_id)
    assert session.current_request.status == "accepted"
    assert db.session.get(Appointment, appointment.id).status == "started"
    assert appointments.open_room(appointment.id, customer.id, now=opens).id == session.id  # same room again
    # The payment now belongs to the session's escrow.
    assert money.held_for_payment(payment.id) == 0 and money.escrow_balance(session.id) == 2999

    for user in (customer, m):
        lifecycle.join_room(session.id, user.id)
    db.session.commit()
    assert lifecycle.maybe_go_live(session.id)
    db.session.commit()
    lifecycle.end_session(session.id, m.id, "Replace the front pads.")
    db.session.commit()
    assert money.escrow_balance(session.id) == 0
    earned = db.session.scalar(sa.select(sa.func.sum(LedgerEntry.amount_cents)).where(
        LedgerEntry.account == money.mechanic_account(m.id)))
    assert earned == 2999 - 600  # 20% platform fee
    txns = db.session.execute(sa.select(LedgerEntry.txn_id, sa.func.sum(LedgerEntry.amount_cents))
                              .group_by(LedgerEntry.txn_id)).all()
    assert all(total == 0 for _, total in txns)


def test_a_busy_mechanic_keeps_the_room_closed_but_the_waiver_stays_signed(app):
    appointment, _, customer, m = booked_and_paid(app)
    from tests.factories import AcceptedSessionFactory

    AcceptedSessionFactory(UserFactory("customer"), m)  # an immediate session the mechanic is still in
    db.session.commit()
    opens = TEN_AM - timedelta(minutes=10)
    sign(appointment, customer, opens)
    db.session.commit()
    with pytest.raises(Conflict, match="finishing another session"):
        appointments.open_room(appointment.id, customer.id, now=opens)
    db.session.rollback()
    assert appointments.waiver_signed(db.session.get(Appointment, appointment.id))
    assert db.session.get(Appointment, appointment.id).status == "booked"


def test_an_in_person_visit_signs_on_the_shop_tablet_and_pays_out_the_deposit(app):
    appointment, payment, customer, m = booked_and_paid(app, kind="in_person")
    with pytest.raises(Conflict, match="at the shop"):
        sign(appointment, customer, TEN_AM)  # not on the customer's own phone
    with pytest.raises(NotFound):
        sign(appointment, UserFactory("mechanic"), TEN_AM)  # another mechanic's tablet
    with pytest.raises(Conflict, match="signs the waiver on this tablet"):
        appointments.complete_visit(appointment.id, m.id, now=TEN_AM)
    db.session.rollback()
    waiver = sign(appointment, m, TEN_AM - timedelta(minutes=5))
    db.session.commit()
    assert (waiver.user_id, waiver.signed_on) == (customer.id, "shop_tablet")
    with pytest.raises(Conflict, match="so they came"):
        appointments.mark_no_show(appointment.id, m.id, now=TEN_AM + timedelta(minutes=20))
    with pytest.raises(Conflict, match="once it has started"):
        appointments.complete_visit(appointment.id, m.id, now=TEN_AM - timedelta(minutes=1))
    db.session.rollback()
    done = appointments.complete_visit(appointment.id, m.id, now=TEN_AM + timedelta(minutes=40))
    db.session.commit()
    assert done.status == "completed" and money.held_for_payment(payment.id) == 0
    legs = {e.account: e.amount_cents for e in db.session.scalars(sa.select(LedgerEntry).where(
        LedgerEntry.payment_id == payment.id, LedgerEntry.kind.in_(("platform_fee", "mechanic_earning")),
        LedgerEntry.amount_cents > 0))}
    assert legs == {"platform": 300, money.mechanic_account(m.id): 1200}
    with pytest.raises(Conflict):
        appointments.complete_visit(appointment.id, m.id, now=TEN_AM + timedelta(minutes=41))


def test_any_available_is_matched_again_30_minutes_before(app):
    first = mechanic()
    second = mechanic()
    appointment, _, customer, _ = booked_and_paid(app, mechanic_id=first, any_mechanic=True)
    before = TEN_AM - appointments.MATCH_BEFORE
    assert appointments.matches_due(before - timedelta(minutes=1)) == []
    assert appointments.check_match(appointment.id, now=before - timedelta(minutes=1)) is None
    # The first mechanic takes the morning off after the booking.
    db.session.add(TimeOff(mechanic_id=first, starts_at=TEN_AM - timedelta(hours=1), ends_at=TEN_AM + timedelta(hours=2)))
    db.session.commit()
    assert appointments.matches_due(before) == [appointment.id]
    assert appointments.check_match(appointment.id, now=before) == second
    db.session.commit()
    moved = db.session.get(Appointment, appointment.id)
    assert (moved.mechanic_id, moved.ics_sequence, moved.matched_at) == (second, 1, before)
    assert appointments.matches_due(before) == []
    assert appointments.check_match(appointment.id, now=before) is None  # once
    from autodoctor.models import OutboxEmail

    told = db.session.scalars(sa.select(OutboxEmail.to_address).where(OutboxEmail.subject.like("%new mechanic%") | OutboxEmail.subject.like("%available mechanic%"))).all()
    assert customer.email in told and db.session.get(User, second).email in told


def test_any_available_keeps_its_mechanic_when_still_free(app):
    first = mechanic()
    mechanic()
    appointment, *_ = booked_and_paid(app, mechanic_id=first, any_mechanic=True)
    at = TEN_AM - timedelta(minutes=20)
    assert appointments.check_match(appointment.id, now=at) == first
    db.session.commit()
    kept = db.session.get(Appointment, appointment.id)
    assert (kept.mechanic_id, kept.ics_sequence, kept.matched_at) == (first, 0, at)


def test_signed_waivers_are_kept_per_intake(app):
    appointment, _, customer, _ = booked_and_paid(app)
    sign(appointment, customer, TEN_AM)
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Waiver).where(
        Waiver.intake_id == db.session.get(Appointment, appointment.id).intake_id)) == 1
