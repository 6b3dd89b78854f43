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
from autodoctor.services import availability
from autodoctor.services.errors import Conflict, NotFound, ValidationError

HOLD_FOR = timedelta(minutes=15)
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


def hold_slot(customer_id, mechanic_id, plan, starts_at, kind="online", customer_time_zone="UTC", now=None):
    """Hold `starts_at` (naive UTC) with the mechanic for the plan's length, for 15 minutes."""
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
                              hold_expires_at=now + HOLD_FOR, customer_time_zone=customer_time_zone)
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
    """A job for each reminder still ahead, `left` before the start (the sweep backs them up;
    a job whose reminder is no longer due does nothing)."""
    from autodoctor.jobs import appointments as appointment_jobs

    passed = _passed(left)
    for minutes in REMINDER_MINUTES:
        if passed is None or minutes < passed:
            jobs.schedule(left - timedelta(minutes=minutes), appointment_jobs.send_reminder_job, appointment_id)


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


def expire_holds(mechanic_id=None, now=None):
    """Holds past their 15 minutes give their time back (for the sweep, and before a new hold)."""
    now = now or clock.now()
    query = update(Appointment).where(Appointment.status == "held", Appointment.hold_expires_at <= now)
    if mechanic_id is not None:
        query = query.where(Appointment.mechanic_id == mechanic_id)
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
    (refund, credit) in cents."""
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
    payment = db.session.scalar(db.select(Payment).where(
        Payment.appointment_id == appointment.id, Payment.status == "paid"))
    if payment is None:
        return 0, 0
    refund, credit, fee = cancellation_terms(payment.amount_cents, left)
    money.settle_cancelled_appointment(payment, appointment.mechanic_id, refund, credit, fee)
    if refund:
        payments.send_refund_later(payment, refund)
    return refund, credit


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
                ics_sequence=Appointment.ics_sequence + 1, last_reminder_minutes=_passed(left)),
        execution_options={"synchronize_session": False}).rowcount
    if not moved:
        raise Conflict("This appointment changed meanwhile. Please try again.")
    db.session.expire_all()
    _schedule_reminders(appointment_id, left)
    return db.session.get(Appointment, appointment_id)
