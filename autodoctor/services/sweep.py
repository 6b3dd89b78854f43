"""The periodic sweep: applies every overdue transition, so a lost job or a dead worker
delays a timeout but never skips it. Idempotent: each transition is guarded."""
import logging
from datetime import timedelta

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import ConsultSession, SessionRequest
from autodoctor.services import appointments, lifecycle, payments, presence, routing, waitlist

log = logging.getLogger(__name__)


def run_sweep(now=None):
    """Apply overdue transitions, one commit each; returns how many happened."""
    now = now or clock.now()
    steps = [
        (lifecycle.expire_request, db.select(SessionRequest.id).where(
            SessionRequest.status.in_(("pending", "unattended")),
            SessionRequest.created_at <= now - lifecycle.EXPIRE_AFTER)),
        (lifecycle.mark_unattended, db.select(SessionRequest.id).where(
            SessionRequest.status == "pending", SessionRequest.created_at <= now - lifecycle.UNATTENDED_AFTER)),
        (routing.broadcast, routing.due_for_broadcast(now)),  # targeted offers' 60 s over: to everyone
        (lifecycle.cancel_no_show, db.select(SessionRequest.id).join(ConsultSession).where(
            SessionRequest.status == "accepted", ConsultSession.status == "waiting",
            SessionRequest.accepted_at <= now - lifecycle.NO_SHOW_AFTER)),
        (lifecycle.cancel_orphaned, db.select(ConsultSession.id).where(
            ConsultSession.status == "waiting", ConsultSession.accepted_at <= now - lifecycle.ORPHANED_AFTER)),
        (lifecycle.end_at_time_limit, db.select(ConsultSession.id).where(
            ConsultSession.status == "live", ConsultSession.ends_at <= now)),
        (lifecycle.warn_time_left, db.select(ConsultSession.id).where(
            ConsultSession.status == "live", ConsultSession.ends_at > now,
            ConsultSession.ends_at <= now + timedelta(minutes=lifecycle.WARNING_MINUTES[0]),
            ConsultSession.warned_minutes.is_(None) | (ConsultSession.warned_minutes > lifecycle.WARNING_MINUTES[-1]))),
        (appointments.send_due_reminder, appointments.reminders_due(now)),
        (appointments.check_match, appointments.matches_due(now)),  # "any available", 30 minutes before
        # Checkouts that can no longer complete give their account credit back (after the holds above).
        (payments.release_credit, payments.credit_to_release(now)),
        (waitlist.expire_entry, waitlist.due(now)),  # waitlist places past their 24 hours
    ]
    done = appointments.expire_holds(now=now)  # checkout holds past their 15 minutes
    db.session.commit()
    try:  # mechanics whose dashboard has been gone for the presence window go offline
        done += presence.expire(now)
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("sweep: presence.expire failed")
    for transition, query in steps:
        ids = query if isinstance(query, list) else db.session.scalars(query.limit(500)).all()
        for item_id in ids:
            try:
                if transition(item_id, now=now):
                    done += 1
                db.session.commit()
            except Exception:
                db.session.rollback()
                log.exception("sweep: %s(%s) failed", transition.__name__, item_id)
    return done
