"""Booking a time with a mechanic. Choosing a time holds it for 15 minutes while the customer
pays; nobody else can take it meanwhile. Two customers choosing the same time at once: one
gets the hold, the other a clear "just taken" with fresh times to pick from.

Holds for one mechanic are taken one at a time (a no-op UPDATE of the mechanic's profile row
locks it: a row lock on Postgres, the write lock on SQLite), and on Postgres an exclusion
constraint refuses overlapping appointments whatever happens here."""
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from autodoctor import clock, jobs
from autodoctor.extensions import db
from autodoctor.models import Appointment, MechanicProfile, User
from autodoctor.models.scheduling import APPOINTMENT_KINDS
from autodoctor.services import availability, fees
from autodoctor.services.errors import Conflict, NotFound, ValidationError

HOLD_FOR = timedelta(minutes=15)
OPENS_BEFORE = timedelta(minutes=15)  # the waiver can be signed and the room opened from then
MATCH_BEFORE = timedelta(minutes=30)  # "any available": the match is checked again then
NO_SHOW_GRACE = timedelta(minutes=10)
FULL_REFUND_BEFORE = timedelta(hours=24)  # cancelled earlier: refunded in full minus the fee
PARTIAL_REFUND_BEFORE = timedelta(hours=2)  # cancelled earlier: 75% back; later (or no-show): 50% credit
CANCELLATION_FEE_CENTS = 500
REMINDER_MINUTES = (24 * 60, 60, 15)  # before the start, largest first
TAKEN = "That time was just taken. Please pick another time."


class SlotTaken(Conflict):
    """The chosen time is no longer free; `alternatives` are the mechanic's next free slots."""

    def __init__(self, alternatives):
        super().__init__(TAKEN, field="starts_at")
        self.alternatives = alternatives


def hold_slot(customer_id, mechanic_id, plan, starts_at, kind="online", customer_time_zone="UTC", now=None,
              intake=None, any_mechanic=False):
    """Hold `starts_at` (naive UTC) with the mechanic for the plan's length, for 15 minutes.
    `intake`: what the customer told us (vehicle, concern, photos); `any_mechanic`: booked as
    "any available" (the match is checked again 30 minutes before the start)."""
    now = now or clock.now()
    if kind not in APPOINTMENT_KINDS:
        raise ValidationError("Choose an online or an in-person appointment.", field="kind")
    mechanic = db.session.get(User, mechanic_id)
    if mechanic is None or mechanic.role != "mechanic":
        raise NotFound("That mechanic does not exist.", field="mechanic")
    _lock_mechanic(mechanic_id)
    expire_holds(mechanic_id, now)
    if not availability.is_bookable(mechanic_id, starts_at, plan.minutes, now):
        raise SlotTaken(_alternatives(mechanic_id, starts_at, plan.minutes, now))
    appointment = Appointment(customer_id=customer_id, mechanic_id=mechanic_id, plan_id=plan.id, kind=kind,
                              status="held", starts_at=starts_at, ends_at=starts_at + timedelta(minutes=plan.minutes),
                              hold_expires_at=now + HOLD_FOR, customer_time_zone=customer_time_zone,
                              intake_id=intake.id if intake is not None else None, any_mechanic=any_mechanic)
    db.session.add(appointment)
    try:
        db.session.flush()
    except IntegrityError:  # the exclusion constraint: taken by a transaction this lock did not see
        db.session.rollback()
        raise SlotTaken(_alternatives(mechanic_id, starts_at, plan.minutes, now)) from None
    return appointment


def confirm(appointment_id, now=None, rehold=False):
    """The held time is paid for: booked. With `rehold`, a hold that ran out is taken again
    first if the time is still free (SlotTaken otherwise). Reminders already past (a booking
    made 30 minutes ahead has no 24-hour or 1-hour reminder) are marked as done; the others
    are scheduled."""
    now = now or clock.now()
    appointment = db.session.get(Appointment, appointment_id)
    if appointment is None:
        raise NotFound("That appointment does not exist.")
    if rehold and (appointment.status == "expired" or (
            appointment.status == "held" and appointment.hold_expires_at <= now)):
        _hold_again(appointment, now)
    left = appointment.starts_at - now
    passed = _passed(left)
    booked = db.session.execute(
        update(Appointment).where(Appointment.id == appointment_id, Appointment.status == "held",
                                  Appointment.hold_expires_at > now)
        .values(status="booked", booked_at=now, last_reminder_minutes=passed),
        execution_options={"synchronize_session": False}).rowcount
    if not booked:
        raise Conflict("The 15 minutes to pay for this time have run out. Please pick a time again.")
    db.session.expire_all()
    _schedule_reminders(appointment_id, left)
    return db.session.get(Appointment, appointment_id)


def _schedule_reminders(appointment_id, left):
    """A job for each reminder still ahead, `left` before the start, and for an "any available"
    booking the match check 30 minutes before (the sweep backs them up; a job with nothing
    left to do does nothing)."""
    from autodoctor.jobs import appointments as appointment_jobs

    passed = _passed(left)
    for minutes in REMINDER_MINUTES:
        if passed is None or minutes < passed:
            jobs.schedule(left - timedelta(minutes=minutes), appointment_jobs.send_reminder_job, appointment_id)
    if db.session.get(Appointment, appointment_id).any_mechanic:
        jobs.schedule(max(left - MATCH_BEFORE, timedelta(0)), appointment_jobs.check_match_job, appointment_id)


def send_due_reminder(appointment_id, now=None):
    """Send the reminder that is due (24 h, 1 h or 15 min before), once: a guarded update of
    `last_reminder_minutes`, so a job and the sweep never both send it. Returns its minutes."""
    now = now or clock.now()
    appointment = db.session.get(Appointment, appointment_id)
    due = _due_minutes(appointment, now) if appointment is not None else None
    if due is None or not db.session.execute(
            update(Appointment).where(
                Appointment.id == appointment_id, Appointment.status == "booked",
                Appointment.last_reminder_minutes.is_(None) | (Appointment.last_reminder_minutes > due))
            .values(last_reminder_minutes=due), execution_options={"synchronize_session": False}).rowcount:
        return None
    from autodoctor.services import notifications

    notifications.appointment_reminder(appointment, due)
    return due


def reminders_due(now):
    """Ids of booked appointments with a reminder due now (for the sweep)."""
    candidates = db.session.scalars(db.select(Appointment).where(
        Appointment.status == "booked", Appointment.starts_at > now,
        Appointment.starts_at <= now + timedelta(minutes=REMINDER_MINUTES[0]),
        Appointment.last_reminder_minutes.is_(None) | (Appointment.last_reminder_minutes > REMINDER_MINUTES[-1])))
    return [a.id for a in candidates if _due_minutes(a, now) is not None]


def _due_minutes(appointment, now):
    """The reminder due for a booked appointment at `now` and not yet sent, or None."""
    if appointment.status != "booked" or appointment.starts_at <= now:
        return None
    due = _passed(appointment.starts_at - now)
    last = appointment.last_reminder_minutes
    return due if due is not None and (last is None or last > due) else None


def _passed(left):
    """The smallest reminder mark already reached with `left` to go (None: 24 h or more)."""
    return min((m for m in REMINDER_MINUTES if left <= timedelta(minutes=m)), default=None)


def _hold_again(appointment, now):
    _lock_mechanic(appointment.mechanic_id)
    expire_holds(appointment.mechanic_id, now)
    db.session.refresh(appointment)  # the bulk update above may have just expired it
    minutes = appointment.minutes
    if not availability.is_bookable(appointment.mechanic_id, appointment.starts_at, minutes, now):
        raise SlotTaken(_alternatives(appointment.mechanic_id, appointment.starts_at, minutes, now))
    appointment.status, appointment.hold_expires_at = "held", now + HOLD_FOR
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise SlotTaken(_alternatives(appointment.mechanic_id, appointment.starts_at, minutes, now)) from None


def expire_holds(mechanic_id=None, now=None, appointment_id=None):
    """Holds past their 15 minutes give their time back (for the sweep, and before a new hold),
    all of them, a mechanic's or one appointment's; returns how many."""
    now = now or clock.now()
    query = update(Appointment).where(Appointment.status == "held", Appointment.hold_expires_at <= now)
    if mechanic_id is not None:
        query = query.where(Appointment.mechanic_id == mechanic_id)
    if appointment_id is not None:
        query = query.where(Appointment.id == appointment_id)
    return db.session.execute(query.values(status="expired"), execution_options={"synchronize_session": False}).rowcount


def _lock_mechanic(mechanic_id):
    db.session.execute(update(MechanicProfile).where(MechanicProfile.user_id == mechanic_id)
                       .values(user_id=MechanicProfile.user_id), execution_options={"synchronize_session": False})


def _alternatives(mechanic_id, around, minutes, now, count=6):
    """The next free times from the same day on: what the customer picks from instead."""
    day_start = around.replace(hour=0, minute=0, second=0, microsecond=0)
    return availability.slots(mechanic_id, day_start, day_start + timedelta(days=7), minutes, now)[:count]


def cancellation_terms(paid_cents, left):
    """(refund, account credit, flat fee) in cents for a cancellation `left` before the start
    (DESIGN: 24 h+ full refund minus $5; 2–24 h 75%; under 2 h or no-show 50% as credit)."""
    if left >= FULL_REFUND_BEFORE:
        fee = min(CANCELLATION_FEE_CENTS, paid_cents)
        return paid_cents - fee, 0, fee
    if left >= PARTIAL_REFUND_BEFORE:
        return (paid_cents * 75 + 50) // 100, 0, 0
    return 0, (paid_cents + 1) // 2, 0


def cancel(appointment_id, customer_id, now=None):
    """The customer cancels a booked appointment; the money moves per the tiers. Returns
    (cents back to the card, cents back as account credit): a refund of what was paid from
    account credit goes back to account credit."""
    now = now or clock.now()
    appointment = db.session.get(Appointment, appointment_id)
    if appointment is None or appointment.customer_id != customer_id:
        raise NotFound("That appointment does not exist.")
    if appointment.starts_at <= now:
        raise Conflict("This appointment has already started; it can no longer be cancelled.")
    return _close(appointment, "cancelled", appointment.starts_at - now)


def mark_no_show(appointment_id, mechanic_id, now=None):
    """The customer did not come: after 10 minutes' grace the mechanic closes it (50% credit)."""
    now = now or clock.now()
    appointment = db.session.get(Appointment, appointment_id)
    if appointment is None or appointment.mechanic_id != mechanic_id:
        raise NotFound("That appointment does not exist.")
    if now < appointment.starts_at + NO_SHOW_GRACE:
        raise Conflict("Give the customer 10 minutes after the start before marking a no-show.")
    if waiver_signed(appointment):
        raise Conflict("The customer signed the waiver, so they came: this is not a no-show.")
    return _close(appointment, "no_show", timedelta(0))


def _close(appointment, status, left):
    from autodoctor.models import Payment
    from autodoctor.services import money, payments

    if not db.session.execute(
            update(Appointment).where(Appointment.id == appointment.id, Appointment.status == "booked")
            .values(status=status, ics_sequence=Appointment.ics_sequence + 1),
            execution_options={"synchronize_session": False}).rowcount:
        raise Conflict("This appointment is not booked, so it cannot be cancelled now.")
    db.session.expire_all()
    if status == "cancelled":
        from autodoctor.services import notifications

        notifications.appointment_cancelled(db.session.get(Appointment, appointment.id))
    payment = db.session.scalar(db.select(Payment).where(
        Payment.appointment_id == appointment.id, Payment.status == "paid"))
    if payment is None:
        return 0, 0
    paid = payment.amount_cents + payment.credit_cents  # the tiers apply to card and account credit alike
    refund, credit, fee = cancellation_terms(paid, left)
    to_card, to_credit = money.settle_cancelled_appointment(payment, appointment.mechanic_id, refund, credit, fee)
    if to_card:
        payments.send_refund_later(payment, to_card)
    return to_card, to_credit


def reschedule(appointment_id, customer_id, starts_at, now=None):
    """Move a booked appointment to another free time of the same mechanic, up to 2 hours
    before it starts. The invite keeps its UID with a higher sequence; reminders start over."""
    now = now or clock.now()
    appointment = db.session.get(Appointment, appointment_id)
    if appointment is None or appointment.customer_id != customer_id:
        raise NotFound("That appointment does not exist.")
    if appointment.status != "booked":
        raise Conflict("Only a booked appointment can be moved.")
    if appointment.starts_at - now < PARTIAL_REFUND_BEFORE:
        raise Conflict("Appointments can be moved up to 2 hours before they start.")
    minutes = appointment.minutes
    _lock_mechanic(appointment.mechanic_id)
    expire_holds(appointment.mechanic_id, now)
    if not availability.is_bookable(appointment.mechanic_id, starts_at, minutes, now, moving=appointment_id):
        raise SlotTaken(_alternatives(appointment.mechanic_id, starts_at, minutes, now))
    left = starts_at - now
    moved = db.session.execute(
        update(Appointment).where(Appointment.id == appointment_id, Appointment.status == "booked",
                                  Appointment.starts_at == appointment.starts_at)
        .values(starts_at=starts_at, ends_at=starts_at + timedelta(minutes=minutes),
                ics_sequence=Appointment.ics_sequence + 1, last_reminder_minutes=_passed(left), matched_at=None),
        execution_options={"synchronize_session": False}).rowcount
    if not moved:
        raise Conflict("This appointment changed meanwhile. Please try again.")
    db.session.expire_all()
    _schedule_reminders(appointment_id, left)
    from autodoctor.services import notifications

    notifications.appointment_moved(db.session.get(Appointment, appointment_id))
    return db.session.get(Appointment, appointment_id)


# On the day -------------------------------------------------------------------------------


def _booked(appointment_id, user_id=None, role="customer"):
    appointment = db.session.get(Appointment, appointment_id)
    owner = appointment and (appointment.customer_id if role == "customer" else appointment.mechanic_id)
    if appointment is None or (user_id is not None and owner != user_id):
        raise NotFound("That appointment does not exist.")
    return appointment


def can_open(appointment, now):
    """From 15 minutes before the start until the end: sign the waiver, open the room."""
    return appointment.status in ("booked", "started") and \
        appointment.starts_at - OPENS_BEFORE <= now < appointment.ends_at


def ensure_intake(appointment):
    """The intake the room shows. Bookings carry one from the scheduling page; one made without
    (an older booking) gets a short one, so the day still works."""
    if appointment.intake is None:
        from autodoctor.models import Intake

        last = db.session.scalar(db.select(Intake).where(Intake.customer_id == appointment.customer_id)
                                 .order_by(Intake.id.desc()).limit(1))
        intake = Intake(customer_id=appointment.customer_id, plan_id=appointment.plan_id, advice_only=True,
                        concern=f"Scheduled {appointment.plan.name} appointment (no details given when booking).",
                        city=last.city if last else "Not given", country=last.country if last else "--")
        db.session.add(intake)
        db.session.flush()
        appointment.intake_id = intake.id
        db.session.flush()
        db.session.refresh(appointment)
    return appointment.intake


def sign_waiver(appointment_id, signer, name, signature, ip, user_agent, now=None):
    """The waiver for an appointment, signed from 15 minutes before the start: online by the
    customer on their device, in person on the shop's tablet (the mechanic signed in). The
    typed name must be the customer's. Returns the waiver (the first one, if signed before)."""
    from autodoctor.services import waivers

    now = now or clock.now()
    on_tablet = signer.role == "mechanic"
    appointment = _booked(appointment_id, signer.id, "mechanic" if on_tablet else "customer")
    if on_tablet != (appointment.kind == "in_person"):
        raise Conflict("An in-person visit's waiver is signed at the shop, on the mechanic's tablet."
                       if appointment.kind == "in_person" else
                       "The customer signs the waiver for an online appointment on their own device.")
    if not can_open(appointment, now):
        raise Conflict(_window_message(appointment, now))
    name, png = waivers.check(name, signature, expected_name=appointment.customer.full_name)
    return waivers.sign(ensure_intake(appointment), appointment.customer_id, name, png, ip, user_agent,
                        "shop_tablet" if on_tablet else "customer")


def _window_message(appointment, now):
    if now >= appointment.ends_at or appointment.status not in ("booked", "started"):
        return "This appointment is over, so its waiver can no longer be signed."
    return "The waiver can be signed from 15 minutes before the start."


def waiver_signed(appointment):
    from autodoctor.services import waivers

    return waivers.signed(appointment.intake) is not None


def open_room(appointment_id, customer_id, now=None):
    """An online appointment's room opens (from 15 minutes before, once the waiver is signed):
    a session accepted by the booked mechanic, waiting for both in the room, with the
    appointment's payment moved into its escrow. From there it is the normal room flow
    (live when both are in, the clock, the end, notes, rating, payout). Opening again returns
    the same session."""
    from autodoctor.jobs import lifecycle as lifecycle_jobs
    from autodoctor.models import ConsultSession, Payment, SessionRequest
    from autodoctor.realtime import emit
    from autodoctor.services import lifecycle, money, timeline

    now = now or clock.now()
    appointment = _booked(appointment_id, customer_id)
    if appointment.session_id is not None:
        return appointment.session
    if appointment.kind != "online":
        raise Conflict("An in-person visit takes place at the mechanic's shop.")
    if not can_open(appointment, now):
        raise Conflict("The room opens 15 minutes before the start." if now < appointment.ends_at
                       else "This appointment is over.")
    if not waiver_signed(appointment):
        raise Conflict("Sign the waiver first; then you can join.")
    if lifecycle.active_session_for_customer(customer_id):
        raise Conflict("You have another session open. Finish it first, then join your appointment.")
    if lifecycle.mechanic_busy(appointment.mechanic_id):
        raise Conflict(f"{appointment.mechanic.full_name} is finishing another session. "
                       "Try again in a minute — your time is kept.")
    session = ConsultSession(customer_id=customer_id, mechanic_id=appointment.mechanic_id,
                             plan_id=appointment.plan_id, intake_id=appointment.intake_id, status="waiting",
                             minutes=appointment.minutes, accepted_at=now, fee_percent=fees.current_percent())
    try:
        with db.session.begin_nested():
            db.session.add(session)
            db.session.flush()
            request = SessionRequest(session_id=session.id, customer_id=customer_id, status="accepted",
                                     mechanic_id=appointment.mechanic_id, created_at=now, accepted_at=now,
                                     closed_at=now, close_reason="appointment")
            db.session.add(request)
            db.session.flush()
    except IntegrityError:  # opened at the same moment in another tab, or either person became busy
        db.session.expire_all()
        if db.session.get(Appointment, appointment_id).session_id is not None:
            return db.session.get(Appointment, appointment_id).session
        raise Conflict(f"{appointment.mechanic.full_name} is finishing another session. "
                       "Try again in a minute — your time is kept.") from None
    if not db.session.execute(
            update(Appointment).where(Appointment.id == appointment_id, Appointment.status == "booked",
                                      Appointment.session_id.is_(None))
            .values(status="started", session_id=session.id), execution_options={"synchronize_session": False}
    ).rowcount:
        db.session.rollback()
        raise Conflict("This appointment changed meanwhile. Please reload the page.")
    payment = db.session.scalar(db.select(Payment).where(
        Payment.appointment_id == appointment_id, Payment.status == "paid"))
    if payment is not None:
        payment.session_id = session.id
        money.move_to_session(payment, session.id)
    timeline.record(session.id, "created",
                    f"Appointment #{appointment_id} ({appointment.starts_at:%d %b %H:%M} UTC): room opened",
                    actor_id=customer_id, request_id=request.id)
    timeline.record(session.id, "accepted", f"Booked with {appointment.mechanic.full_name}",
                    actor_id=appointment.mechanic_id, request_id=request.id)
    jobs.schedule(lifecycle.NO_SHOW_AFTER, lifecycle_jobs.cancel_no_show_job, request.id)
    jobs.schedule(lifecycle.ORPHANED_AFTER, lifecycle_jobs.cancel_orphaned_job, session.id)
    emit("request.changed", request_id=request.id, session_id=session.id)
    db.session.expire_all()
    return db.session.get(ConsultSession, session.id)


def complete_visit(appointment_id, mechanic_id, now=None):
    """An in-person visit took place (from its start, with the waiver signed on the tablet): the
    deposit is paid out like a session (platform fee, the mechanic the rest); the balance is
    settled at the shop."""
    from autodoctor.models import Payment
    from autodoctor.services import money

    now = now or clock.now()
    appointment = _booked(appointment_id, mechanic_id, "mechanic")
    if appointment.kind != "in_person":
        raise Conflict("Online appointments are completed in the room.")
    if now < appointment.starts_at:
        raise Conflict("A visit can be marked done once it has started.")
    if not waiver_signed(appointment):
        raise Conflict("The customer signs the waiver on this tablet before the visit is completed.")
    if not db.session.execute(
            update(Appointment).where(Appointment.id == appointment_id, Appointment.status == "booked")
            .values(status="completed"), execution_options={"synchronize_session": False}).rowcount:
        raise Conflict("This visit is no longer open.")
    payment = db.session.scalar(db.select(Payment).where(
        Payment.appointment_id == appointment_id, Payment.status == "paid"))
    if payment is not None:
        money.settle_cancelled_appointment(payment, mechanic_id, memo=f"Payout of {payment.description}")
    db.session.expire_all()
    return db.session.get(Appointment, appointment_id)


def check_match(appointment_id, now=None):
    """30 minutes before an "any available" appointment: keep its mechanic if they can still
    take it (active, approved, the time still free in their calendar); otherwise hand it to the
    first other mechanic free then, with a new invite sequence and both people told. Done once
    (`matched_at`). Returns the mechanic id, or None when nothing was due."""
    from autodoctor.models import MechanicProfile, User

    now = now or clock.now()
    appointment = db.session.get(Appointment, appointment_id)
    if appointment is None or not appointment.any_mechanic or appointment.status != "booked" \
            or appointment.matched_at is not None or not (
                appointment.starts_at - MATCH_BEFORE <= now < appointment.starts_at):
        return None
    _lock_mechanic(appointment.mechanic_id)
    eligible = list(db.session.scalars(
        db.select(User.id).join(MechanicProfile, MechanicProfile.user_id == User.id)
        .where(User.role == "mechanic", User.is_active_account, MechanicProfile.approved).order_by(User.id)))
    current = appointment.mechanic_id
    candidates = [current] + [m for m in eligible if m != current] if current in eligible else eligible
    previous = appointment.mechanic
    for mechanic_id in availability.free_at(candidates, appointment.starts_at, appointment.minutes, now,
                                            moving=appointment_id):
        values = {"matched_at": now}
        if mechanic_id != current:
            _lock_mechanic(mechanic_id)
            values.update(mechanic_id=mechanic_id, ics_sequence=Appointment.ics_sequence + 1)
        try:
            with db.session.begin_nested():
                moved = db.session.execute(
                    update(Appointment).where(Appointment.id == appointment_id, Appointment.status == "booked",
                                              Appointment.matched_at.is_(None), Appointment.mechanic_id == current)
                    .values(**values), execution_options={"synchronize_session": False}).rowcount
        except IntegrityError:  # the exclusion constraint: taken meanwhile
            continue
        if not moved:
            return None
        db.session.expire_all()
        if mechanic_id != current:
            from autodoctor.services import notifications

            notifications.appointment_mechanic_changed(db.session.get(Appointment, appointment_id), previous)
        return mechanic_id
    # Nobody else is free: the booked mechanic keeps it (the customer can still cancel).
    db.session.execute(update(Appointment).where(Appointment.id == appointment_id, Appointment.matched_at.is_(None))
                       .values(matched_at=now), execution_options={"synchronize_session": False})
    return current


def matches_due(now):
    """Ids of "any available" appointments whose match check is due (for the sweep)."""
    return list(db.session.scalars(db.select(Appointment.id).where(
        Appointment.any_mechanic, Appointment.status == "booked", Appointment.matched_at.is_(None),
        Appointment.starts_at > now, Appointment.starts_at <= now + MATCH_BEFORE)))
