"""The periodic sweep: applies every overdue transition, so a lost job or a dead worker
delays a timeout but never skips it. Idempotent: each transition is guarded.

The steps are listed once (`STEPS`); the sweep runs them all, and the admin console's
maintenance page previews and applies the cleanup ones (`overdue`) with the same queries
and the same transitions."""
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, exists, or_

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import Appointment, ConsultSession, Payment, SessionParticipant, SessionRequest
from autodoctor.models.requests import OPEN_REQUEST_STATUSES
from autodoctor.services import appointments, lifecycle, payments, presence, routing, waitlist

log = logging.getLogger(__name__)

BATCH = 500  # per step and pass; the next pass takes the rest


@dataclass(frozen=True)
class Step:
    key: str
    label: str  # what the maintenance preview calls the group
    target: str  # what the ids are: "request", "session", "appointment", "payment", "waitlist"
    transition: Callable  # transition(id, now=now): truthy when it changed something
    query: Callable  # query(now): a select of ids, or a list of ids
    cleanup: bool = True  # shown and applied by the maintenance page (the rest are reminders and notices)


def _to_expire(now):
    return db.select(SessionRequest.id).where(
        SessionRequest.status.in_(OPEN_REQUEST_STATUSES), lifecycle.past_deadline(now)).order_by(SessionRequest.id)


def _to_mark_unattended(now):
    """Pending for 5 minutes, and not about to expire instead (written out: NOT of a NULL is NULL)."""
    return db.select(SessionRequest.id).where(
        SessionRequest.status == "pending", SessionRequest.created_at <= now - lifecycle.UNATTENDED_AFTER,
        or_(and_(SessionRequest.extended_until.is_(None), SessionRequest.created_at > now - lifecycle.EXPIRE_AFTER),
            SessionRequest.extended_until > now)).order_by(SessionRequest.id)


def _customer_joined():
    return exists().where(SessionParticipant.session_id == ConsultSession.id,
                          SessionParticipant.user_id == ConsultSession.customer_id)


def _no_shows(now):
    return db.select(SessionRequest.id).join(ConsultSession, ConsultSession.id == SessionRequest.session_id).where(
        SessionRequest.status == "accepted", ConsultSession.status == "waiting",
        SessionRequest.accepted_at <= now - lifecycle.NO_SHOW_AFTER, ~_customer_joined()).order_by(SessionRequest.id)


def _orphaned(now):
    no_show_sessions = db.select(SessionRequest.session_id).where(SessionRequest.id.in_(_no_shows(now).order_by(None)))
    return db.select(ConsultSession.id).where(
        ConsultSession.status == "waiting", ConsultSession.accepted_at <= now - lifecycle.ORPHANED_AFTER,
        ConsultSession.id.not_in(no_show_sessions)).order_by(ConsultSession.id)


def _past_their_end(now):
    return db.select(ConsultSession.id).where(
        ConsultSession.status == "live", ConsultSession.ends_at <= now).order_by(ConsultSession.id)


def _warnings_due(now):
    return db.select(ConsultSession.id).where(
        ConsultSession.status == "live", ConsultSession.ends_at > now,
        ConsultSession.ends_at <= now + timedelta(minutes=lifecycle.WARNING_MINUTES[0]),
        ConsultSession.warned_minutes.is_(None) | (ConsultSession.warned_minutes > lifecycle.WARNING_MINUTES[-1]))


def _overdue_holds(now):
    return db.select(Appointment.id).where(
        Appointment.status == "held", Appointment.hold_expires_at <= now).order_by(Appointment.id)


def expire_hold(appointment_id, now=None):
    """One checkout hold past its 15 minutes gives its time back (the maintenance page applies
    exactly what it previewed)."""
    return appointments.expire_holds(appointment_id=appointment_id, now=now) == 1


def _credit_to_release(now):
    """payments.credit_to_release, plus open checkouts holding credit for a hold that this pass expires."""
    for_overdue_holds = db.select(Payment.id).where(
        Payment.status == "open", Payment.credit_cents > 0, Payment.appointment_id.in_(_overdue_holds(now).order_by(None)))
    ids = db.union(payments.credit_to_release(now), for_overdue_holds).subquery()
    return db.select(ids.c.id).order_by(ids.c.id)


def _release_credit(payment_id, now=None):
    return payments.release_credit(payment_id, now=now) > 0


STEPS = (
    Step("holds", "Checkout holds past 15 minutes", "appointment", expire_hold, _overdue_holds),
    Step("expire", "Requests to expire (and refund)", "request", lifecycle.expire_request, _to_expire),
    Step("unattended", "Requests to mark unattended", "request", lifecycle.mark_unattended, _to_mark_unattended),
    # Targeted offers' 60 s are over: to everyone.
    Step("broadcast", "Requests to offer to everyone", "request", routing.broadcast, routing.due_for_broadcast,
         cleanup=False),
    Step("no_show", "Accepted requests whose customer never joined", "request", lifecycle.cancel_no_show, _no_shows),
    Step("orphaned", "Orphaned waiting sessions", "session", lifecycle.cancel_orphaned, _orphaned),
    Step("ended", "Live sessions past their end", "session", lifecycle.end_at_time_limit, _past_their_end),
    Step("warnings", "Time-left warnings", "session", lifecycle.warn_time_left, _warnings_due, cleanup=False),
    Step("reminders", "Appointment reminders", "appointment", appointments.send_due_reminder,
         appointments.reminders_due, cleanup=False),
    # "Any available" appointments, 30 minutes before.
    Step("matches", "Appointment match checks", "appointment", appointments.check_match, appointments.matches_due,
         cleanup=False),
    # Checkouts that can no longer complete give their account credit back (after the holds above).
    Step("credit", "Account credit holds to release", "payment", _release_credit, _credit_to_release),
    Step("waitlist", "Waitlist places past 24 hours", "waitlist", waitlist.expire_entry, waitlist.due),
)
CLEANUP_STEPS = tuple(step for step in STEPS if step.cleanup)


def ids_for(step, now):
    """The ids `step` would change at `now` (at most BATCH)."""
    query = step.query(now)
    if isinstance(query, list):
        return query[:BATCH]
    return list(db.session.scalars(query.limit(BATCH)))


def overdue(now=None):
    """What the cleanup would change at `now`: [(key, label, transition, ids)], in the order it runs."""
    now = now or clock.now()
    return [(step.key, step.label, step.transition, ids_for(step, now)) for step in CLEANUP_STEPS]


def apply(step_ids, now=None):
    """Run the cleanup transitions on the given ids ({key: [ids]}), one commit each, in the
    sweep's order. Returns {key: {"done": [ids], "unchanged": [ids], "failed": [ids]}}."""
    now = now or clock.now()
    results = {}
    for step in CLEANUP_STEPS:
        results[step.key] = _run(step, step_ids.get(step.key, ()), now)
    return results


def _run(step, ids, now):
    outcome = {"done": [], "unchanged": [], "failed": []}
    for item_id in ids:
        try:
            changed = step.transition(item_id, now=now)
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("sweep: %s(%s) failed", step.transition.__name__, item_id)
            outcome["failed"].append(item_id)
        else:
            outcome["done" if changed else "unchanged"].append(item_id)
    return outcome


def run_sweep(now=None):
    """Apply overdue transitions, one commit each; returns how many happened."""
    now = now or clock.now()
    done = 0
    try:  # mechanics whose dashboard has been gone for the presence window go offline
        done += presence.expire(now)
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("sweep: presence.expire failed")
    for step in STEPS:  # each query runs after the steps before it committed
        done += len(_run(step, ids_for(step, now), now)["done"])
    return done
