"""Every session and request state transition, in one place.

Each transition is a guarded UPDATE (`WHERE id = :id AND status IN (...)`) whose row count
says whether it happened, writes a `session_events` row, emits an event for the live
screens (published only after commit) and schedules the next timeout. The database
enforces the rest: one active session per customer, one waiting/live session per mechanic.
"""
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from autodoctor import clock, jobs
from autodoctor.extensions import db
from autodoctor.models import ConsultSession, MechanicProfile, SessionParticipant, SessionRequest, User
from autodoctor.models.requests import OPEN_REQUEST_STATUSES
from autodoctor.realtime import emit
from autodoctor.services import fees, money, routing, timeline
from autodoctor.services.errors import Conflict, Forbidden, NotFound, ValidationError

UNATTENDED_AFTER = timedelta(minutes=5)
EXPIRE_AFTER = timedelta(hours=2)
NO_SHOW_AFTER = timedelta(minutes=30)
ORPHANED_AFTER = timedelta(minutes=60)
WARNING_MINUTES = (5, 1)  # "time left" warnings in a live session

BUSY_MESSAGE = "You already have an active session. Finish it before accepting another request."
TAKEN_MESSAGE = "Another mechanic already accepted this request."
HELD_MESSAGE = "This request is offered to other mechanics first — it opens to everyone at {time}."


def _guarded(model, id_, statuses, *conditions, **values):
    """UPDATE one row only if it is still in one of `statuses`; True if it changed."""
    result = db.session.execute(
        update(model).where(model.id == id_, model.status.in_(statuses), *conditions).values(**values),
        execution_options={"synchronize_session": False})
    if result.rowcount:
        db.session.expire_all()
    return result.rowcount == 1


def _get_session(session_id):
    session = db.session.get(ConsultSession, session_id)
    if session is None:
        raise NotFound("That session does not exist.")
    return session


def mechanic_busy(mechanic_id):
    return db.session.scalar(db.select(ConsultSession.id).where(
        ConsultSession.mechanic_id == mechanic_id, ConsultSession.status.in_(("waiting", "live"))))


def _approved(mechanic):
    """An active mechanic whose application was approved: the only kind that takes sessions."""
    profile = mechanic.mechanic_profile
    return mechanic.is_active_account and profile is not None and profile.approved


def active_session_for_customer(customer_id):
    return db.session.scalar(db.select(ConsultSession).where(
        ConsultSession.customer_id == customer_id,
        ConsultSession.status.in_(("pending", "waiting", "live"))))


def open_session(payment):
    """A paid (or free) intake becomes a pending session with a pending request, routed to
    the best online matches first (services.routing)."""
    from autodoctor.jobs import lifecycle as lifecycle_jobs
    from autodoctor.jobs import routing as routing_jobs

    intake = payment.intake
    session = ConsultSession(customer_id=payment.customer_id, plan_id=payment.plan_id, intake_id=intake.id,
                             status="pending", minutes=payment.plan.minutes, fee_percent=fees.current_percent())
    db.session.add(session)
    db.session.flush()  # the customer's partial unique index speaks here
    request = SessionRequest(session=session, customer_id=session.customer_id, status="pending")
    routing.hold(request)  # offered to the best online matches first: the routing job picks them
    db.session.add(request)
    db.session.flush()
    timeline.record(session.id, "created", f"{payment.plan.name} paid", actor_id=session.customer_id,
                    request_id=request.id)
    jobs.schedule(UNATTENDED_AFTER, lifecycle_jobs.mark_unattended_job, request.id)
    jobs.schedule(EXPIRE_AFTER, lifecycle_jobs.expire_request_job, request.id)
    emit("request.changed", request_id=request.id, session_id=session.id)
    if request.broadcast_at is not None:
        jobs.enqueue(routing_jobs.route_request_job, request.id)
    from autodoctor.services import waitlist

    waitlist.booked(session.customer_id)  # off the waitlist, if they were on it
    return session


def accept_request(request_id, mechanic_id, assigned_by=None):
    """First mechanic wins. Others get Conflict; so does a mechanic who is already busy, and
    (unless an admin assigns it) one it is not offered to while it is still held for its
    targeted mechanics (services.routing) — in the same guarded UPDATE."""
    from autodoctor.jobs import lifecycle as lifecycle_jobs

    mechanic = db.session.get(User, mechanic_id)
    if mechanic is None or mechanic.role != "mechanic":
        raise Forbidden("Only mechanics can take requests.")
    if not _approved(mechanic):
        raise Forbidden("Only approved mechanics can take requests.")
    request = db.session.get(SessionRequest, request_id)
    if request is None:
        raise NotFound("That request does not exist.")
    if mechanic_busy(mechanic_id):
        raise Conflict(BUSY_MESSAGE)
    now = clock.now()
    held = () if assigned_by else (routing.visible_to(mechanic_id, now),)
    try:
        if not _guarded(SessionRequest, request_id, OPEN_REQUEST_STATUSES, *held,
                        status="accepted", mechanic_id=mechanic_id, accepted_at=now, closed_at=now):
            db.session.rollback()
            request = db.session.get(SessionRequest, request_id)
            if request.status in OPEN_REQUEST_STATUSES and request.broadcast_at and request.broadcast_at > now:
                raise Conflict(HELD_MESSAGE.format(time=routing.opens_at_label(request)))
            raise Conflict(TAKEN_MESSAGE)
        if not _guarded(ConsultSession, request.session_id, ("pending",),
                        status="waiting", mechanic_id=mechanic_id, accepted_at=now):
            db.session.rollback()
            raise Conflict("This request is no longer available.")
    except IntegrityError:  # the mechanic's partial unique index: busy in a concurrent accept
        db.session.rollback()
        raise Conflict(BUSY_MESSAGE) from None
    kind, detail = ("assigned", f"Assigned by admin to {mechanic.full_name}") if assigned_by else \
        ("accepted", f"Accepted by {mechanic.full_name}")
    timeline.record(request.session_id, kind, detail, actor_id=assigned_by or mechanic_id, request_id=request_id)
    jobs.schedule(NO_SHOW_AFTER, lifecycle_jobs.cancel_no_show_job, request_id)
    jobs.schedule(ORPHANED_AFTER, lifecycle_jobs.cancel_orphaned_job, request.session_id)
    emit("request.changed", request_id=request_id, session_id=request.session_id)
    return db.session.get(ConsultSession, request.session_id)


def _cancel(session, request, request_status, reason, detail, actor_id=None):
    """Close the request and cancel the session with a full refund; False if already moved on."""
    now = clock.now()
    if request is not None and not _guarded(SessionRequest, request.id, (request.status,),
                                            status=request_status, closed_at=now, close_reason=reason):
        return False
    if not _guarded(ConsultSession, session.id, ("pending", "waiting"),
                    status="cancelled", ended_at=now, end_reason=reason):
        db.session.rollback()
        return False
    timeline.record(session.id, "cancelled", detail, actor_id=actor_id, request_id=request and request.id)
    held = money.escrow_balance(session.id)
    refunded = money.refund_session(session, f"Refund: {detail}")  # to cards; the rest was account credit
    credited = max(held, 0) - refunded
    if refunded:
        timeline.record(session.id, "refunded", f"{refunded} cents refunded", request_id=request and request.id)
        from autodoctor.services import payments

        payments.refund_with_provider(session.id, refunded)
    if credited:
        timeline.record(session.id, "credited", f"{credited} cents back as account credit",
                        request_id=request and request.id)
    from autodoctor.services import notifications

    notifications.session_cancelled(session, detail, refunded, credited)
    emit("request.changed", request_id=request and request.id, session_id=session.id)
    return True


def cancel_by_customer(session_id, customer_id):
    """The customer gives up waiting: request cancelled, full refund."""
    session = _get_session(session_id)
    if session.customer_id != customer_id:
        raise Forbidden("This is not your session.")
    request = session.current_request
    if session.status != "pending" or request is None or request.status not in OPEN_REQUEST_STATUSES:
        raise Conflict("A mechanic has already accepted this request; it can no longer be cancelled here.")
    if not _cancel(session, request, "cancelled", "customer_cancelled", "Cancelled by the customer",
                   actor_id=customer_id):
        raise Conflict("A mechanic has just accepted this request; it can no longer be cancelled here.")


def mark_unattended(request_id, now=None):
    """Pending for 5 minutes with no mechanic: goes to the admin queue."""
    now = now or clock.now()
    request = db.session.get(SessionRequest, request_id)
    if request is None or not _guarded(SessionRequest, request_id, ("pending",),
                                       SessionRequest.created_at <= now - UNATTENDED_AFTER, status="unattended"):
        return False
    timeline.record(request.session_id, "unattended", "No mechanic within 5 minutes", request_id=request_id)
    emit("request.changed", request_id=request_id, session_id=request.session_id)
    return True


def request_deadline(request):
    """When an open request expires: 2 hours after it was made, or when an admin extended it to."""
    return request.extended_until or request.created_at + EXPIRE_AFTER


def past_deadline(now):
    """SQL: the request's deadline (`request_deadline`) has passed at `now`."""
    return db.or_(db.and_(SessionRequest.extended_until.is_(None), SessionRequest.created_at <= now - EXPIRE_AFTER),
                  SessionRequest.extended_until <= now)


def expire_request(request_id, now=None):
    """Still unanswered at its deadline (2 hours, or as extended by an admin): expired,
    customer refunded in full."""
    now = now or clock.now()
    request = db.session.get(SessionRequest, request_id)
    if request is None or request.status not in OPEN_REQUEST_STATUSES or request_deadline(request) > now:
        return False
    # The deadline again, in a guarded no-op UPDATE that locks the row: an extension committed
    # meanwhile wins, and one arriving now waits for this expiry and then finds it closed.
    if not _guarded(SessionRequest, request_id, OPEN_REQUEST_STATUSES, past_deadline(now),
                    close_reason=SessionRequest.close_reason):
        return False
    detail = "No mechanic within 2 hours; refunded in full" if request.extended_until is None else \
        "No mechanic before the extended deadline; refunded in full"
    return _cancel(request.session, request, "expired", "expired", detail)


EXTEND_MINUTES = (30, 60)


def extend_request(request_id, minutes, actor_id, reason=None):
    """An admin gives an open request more time before it expires: its deadline becomes
    max(now, current deadline) + `minutes`. Returns the request with its new `extended_until`."""
    from autodoctor.jobs import lifecycle as lifecycle_jobs

    if minutes not in EXTEND_MINUTES:
        raise ValidationError("Extend by 30 or 60 minutes.", field="minutes")
    reason = (reason or "").strip()
    for _ in range(5):  # optimistic on extended_until, like extend_session on ends_at
        request = db.session.get(SessionRequest, request_id, populate_existing=True)
        if request is None:
            raise NotFound("That request does not exist.")
        if request.status not in OPEN_REQUEST_STATUSES:
            raise Conflict("This request is no longer waiting for a mechanic, so it cannot be extended.")
        now = clock.now()
        until = max(now, request_deadline(request)) + timedelta(minutes=minutes)
        same = SessionRequest.extended_until.is_(None) if request.extended_until is None else \
            SessionRequest.extended_until == request.extended_until
        if _guarded(SessionRequest, request_id, OPEN_REQUEST_STATUSES, same, extended_until=until):
            detail = f"Extended by admin by {minutes} minutes, until {until:%H:%M} UTC"
            timeline.record(request.session_id, "extended_request", f"{detail}: {reason}" if reason else detail,
                            actor_id=actor_id, request_id=request_id)
            jobs.schedule(until - now, lifecycle_jobs.expire_request_job, request_id)
            emit("request.changed", request_id=request_id, session_id=request.session_id)
            return db.session.get(SessionRequest, request_id)
    raise Conflict("The request changed while extending it. Please try again.")


def cancel_by_admin(session_id, actor_id, reason):
    """An admin cancels a pending or waiting session: its request is closed, the customer
    refunded in full. True, or Conflict when the session is past that point."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Give a reason for cancelling.", field="reason")
    session = _get_session(session_id)
    if session.status not in ("pending", "waiting"):
        raise Conflict(f"This session is {session.status}; only a pending or waiting session can be cancelled.")
    request = session.current_request
    if request is not None and request.status not in (*OPEN_REQUEST_STATUSES, "accepted"):
        request = None
    if not _cancel(session, request, "cancelled", "admin_cancelled", f"Cancelled by admin: {reason}",
                   actor_id=actor_id):
        db.session.rollback()
        raise Conflict("The session changed while cancelling it (a mechanic may have just accepted it). "
                       "Reload and try again.")
    return True


def cancel_no_show(request_id, now=None):
    """Accepted, but the customer never joined within 30 minutes: mechanic freed, refund."""
    now = now or clock.now()
    request = db.session.get(SessionRequest, request_id)
    if request is None or request.status != "accepted" or request.accepted_at > now - NO_SHOW_AFTER:
        return False
    session = request.session
    if session.status != "waiting" or _participant(session.id, session.customer_id) is not None:
        return False
    return _cancel(session, request, "cancelled", "customer_no_show",
                   "Customer did not join within 30 minutes; refunded in full")


def cancel_orphaned(session_id, now=None):
    """Waiting for 60 minutes without both people in the room: cancelled, refund."""
    now = now or clock.now()
    session = db.session.get(ConsultSession, session_id)
    if session is None or session.status != "waiting" or session.accepted_at > now - ORPHANED_AFTER:
        return False
    request = session.current_request if session.current_request and session.current_request.status == "accepted" \
        else None
    return _cancel(session, request, "cancelled", "orphaned",
                   "The session never started within 60 minutes; refunded in full")


def _participant(session_id, user_id):
    return db.session.scalar(db.select(SessionParticipant).where(
        SessionParticipant.session_id == session_id, SessionParticipant.user_id == user_id))


def join_room(session_id, user_id):
    """Count a connection of a participant to the room (call maybe_go_live after commit)."""
    session = _get_session(session_id)
    if not session.is_participant(db.session.get(User, user_id)):
        raise Forbidden("You are not part of this session.")
    now = clock.now()
    participant = _participant(session_id, user_id)
    if participant is None:
        role = "customer" if user_id == session.customer_id else "mechanic"
        try:
            db.session.add(SessionParticipant(session_id=session_id, user_id=user_id, role=role,
                                              first_joined_at=now, last_joined_at=now, connections=1))
            db.session.flush()
        except IntegrityError:  # the same person opened two tabs at once
            db.session.rollback()
            return join_room(session_id, user_id)
        timeline.record(session_id, "joined", f"{role.title()} joined the room", actor_id=user_id)
    else:
        db.session.execute(update(SessionParticipant).where(SessionParticipant.id == participant.id).values(
            connections=SessionParticipant.connections + 1, last_joined_at=now))
    emit("room.presence", session_id=session_id)


def leave_room(session_id, user_id):
    now = clock.now()
    db.session.execute(update(SessionParticipant).where(
        SessionParticipant.session_id == session_id, SessionParticipant.user_id == user_id,
        SessionParticipant.connections > 0).values(
        connections=SessionParticipant.connections - 1, last_left_at=now))
    emit("room.presence", session_id=session_id)


def present_user_ids(session_id):
    return set(db.session.scalars(db.select(SessionParticipant.user_id).where(
        SessionParticipant.session_id == session_id, SessionParticipant.connections > 0)))


def maybe_go_live(session_id):
    """Both people are in the room: the session goes live and its clock starts."""
    session = _get_session(session_id)
    if session.status != "waiting" or present_user_ids(session_id) != {session.customer_id, session.mechanic_id}:
        return False
    now = clock.now()
    ends_at = now + timedelta(minutes=session.minutes)
    if not _guarded(ConsultSession, session_id, ("waiting",), status="live", started_at=now, ends_at=ends_at):
        return False
    timeline.record(session_id, "live", "Both participants present; clock started")
    _schedule_clock(session_id, ends_at - now)
    emit("session.changed", session_id=session_id)
    return True


def _schedule_clock(session_id, left):
    """Jobs for the warnings and the end of a live session `left` from now (the sweep
    applies them too; each job checks the clock again, so stale ones do nothing)."""
    from autodoctor.jobs import lifecycle as lifecycle_jobs

    for minutes in WARNING_MINUTES:
        if left > timedelta(minutes=minutes):
            jobs.schedule(left - timedelta(minutes=minutes), lifecycle_jobs.warn_time_left_job, session_id)
    jobs.schedule(left, lifecycle_jobs.end_at_time_limit_job, session_id)


def warn_time_left(session_id, now=None):
    """Send the 5- or 1-minute warning that is due, once each (a guarded UPDATE of
    `warned_minutes`). Returns the minutes warned about, or None."""
    now = now or clock.now()
    session = db.session.get(ConsultSession, session_id)
    left = session.seconds_left(now) if session else None
    if not left:
        return None
    due = min((m for m in WARNING_MINUTES if left <= m * 60), default=None)
    if due is None or not _guarded(
            ConsultSession, session_id, ("live",), ConsultSession.ends_at == session.ends_at,
            (ConsultSession.warned_minutes.is_(None)) | (ConsultSession.warned_minutes > due),
            warned_minutes=due):
        return None
    timeline.record(session_id, "time_warning", f"{due} minute{'s' if due > 1 else ''} left")
    emit("session.warning", session_id=session_id, minutes=due)
    return due


def extend_session(session_id, minutes, detail):
    """Add paid time to a live session; both screens get the new end time. False when the
    session is no longer live (the caller refunds)."""
    for _ in range(5):  # an optimistic update on ends_at: portable interval arithmetic
        session = db.session.get(ConsultSession, session_id, populate_existing=True)  # as committed now
        if session is None or session.status != "live":
            return False
        now = clock.now()
        ends_at = max(session.ends_at, now) + timedelta(minutes=minutes)
        warned = session.warned_minutes if ends_at - now <= timedelta(minutes=WARNING_MINUTES[0]) else None
        if _guarded(ConsultSession, session_id, ("live",), ConsultSession.ends_at == session.ends_at,
                    ends_at=ends_at, extended_minutes=session.extended_minutes + minutes, warned_minutes=warned):
            timeline.record(session_id, "extended", detail)
            _schedule_clock(session_id, ends_at - now)
            emit("session.changed", session_id=session_id)
            return True
    raise Conflict("The session clock changed while adding time. Please try again.")


def _complete(session, reason, detail, actor_id=None, notes=None, now=None):
    now = now or clock.now()
    values = {"status": "completed", "ended_at": now, "end_reason": reason}
    if notes is not None:
        values["mechanic_notes"] = notes
    if not _guarded(ConsultSession, session.id, ("live",), **values):
        return False
    db.session.execute(update(MechanicProfile).where(MechanicProfile.user_id == session.mechanic_id).values(
        completed_sessions=MechanicProfile.completed_sessions + 1))
    timeline.record(session.id, "completed", detail, actor_id=actor_id)
    money.settle_session(session)
    from autodoctor.services import notifications

    notifications.session_completed(session)
    emit("session.changed", session_id=session.id)
    return True


def end_session(session_id, mechanic_id, notes):
    """The mechanic ends a live session with notes for the customer."""
    session = _get_session(session_id)
    if session.mechanic_id != mechanic_id:
        raise Forbidden("Only the session's mechanic can end it.")
    notes = (notes or "").strip()
    if not notes:
        raise ValidationError("Write a few notes for the customer before ending the session.", field="notes")
    if len(notes) > 5000:
        raise ValidationError("Notes are limited to 5,000 characters.", field="notes")
    if not _complete(session, "ended_by_mechanic", "Ended by the mechanic", actor_id=mechanic_id, notes=notes):
        raise Conflict("This session is not live, so it cannot be ended now.")
    return session


def end_at_time_limit(session_id, now=None):
    """The plan's time is up."""
    now = now or clock.now()
    session = db.session.get(ConsultSession, session_id)
    if session is None or session.status != "live" or session.ends_at > now:
        return False
    return _complete(session, "time_limit", "Time limit reached", now=now)


def force_end(session_id, actor_id, reason):
    """An admin ends a live session now: completed and settled like a normal end; both
    screens go to the summary."""
    session = _get_session(session_id)
    if not _complete(session, "admin_ended", f"Ended by admin: {reason}", actor_id=actor_id):
        raise Conflict("This session is not live, so it cannot be ended now.")
    return session


def reassign(session_id, new_mechanic_id, actor_id, reason):
    """An admin hands a waiting session (and its accepted request) to another free, approved
    mechanic. Guarded on the status and the old mechanic; the mechanic's partial unique index
    refuses one who became busy meanwhile."""
    from autodoctor.jobs import lifecycle as lifecycle_jobs

    session = _get_session(session_id)
    mechanic = db.session.get(User, new_mechanic_id)
    if mechanic is None or mechanic.role != "mechanic" or not _approved(mechanic):
        raise ValidationError("Choose an active, approved mechanic.", field="mechanic_id")
    old_id = session.mechanic_id
    if new_mechanic_id == old_id:
        raise ValidationError("That mechanic already has this session.", field="mechanic_id")
    if mechanic_busy(new_mechanic_id):
        raise Conflict(f"{mechanic.full_name} is busy in another session.")
    request = next((r for r in session.requests if r.status == "accepted" and r.mechanic_id == old_id), None)
    now = clock.now()
    try:
        if session.status != "waiting" or not _guarded(
                ConsultSession, session_id, ("waiting",), ConsultSession.mechanic_id == old_id,
                mechanic_id=new_mechanic_id, accepted_at=now):
            db.session.rollback()
            raise Conflict("Only a session waiting to start can be reassigned; it has just changed.")
        if request is not None:
            _guarded(SessionRequest, request.id, ("accepted",), SessionRequest.mechanic_id == old_id,
                     mechanic_id=new_mechanic_id, accepted_at=now)
    except IntegrityError:  # the mechanic's partial unique index: busy in a concurrent accept
        db.session.rollback()
        raise Conflict(f"{mechanic.full_name} is busy in another session.") from None
    # The old mechanic no longer counts as in the room: the session goes live when the new one is there.
    db.session.execute(update(SessionParticipant).where(
        SessionParticipant.session_id == session_id, SessionParticipant.user_id == old_id).values(connections=0))
    old = db.session.get(User, old_id) if old_id else None
    timeline.record(session_id, "reassigned",
                    f"Reassigned by admin from {old.full_name if old else 'nobody'} to {mechanic.full_name}: {reason}",
                    actor_id=actor_id, request_id=request and request.id)
    if request is not None:
        jobs.schedule(NO_SHOW_AFTER, lifecycle_jobs.cancel_no_show_job, request.id)
    jobs.schedule(ORPHANED_AFTER, lifecycle_jobs.cancel_orphaned_job, session_id)
    emit("request.changed", request_id=request and request.id, session_id=session_id)
    emit("session.changed", session_id=session_id)
    if old_id:
        emit("session.reassigned", session_id=session_id, old_mechanic_id=old_id)
    return db.session.get(ConsultSession, session_id)


def save_notes(session_id, mechanic_id, notes):
    """Notes for a session that ended on its own clock."""
    session = _get_session(session_id)
    if session.mechanic_id != mechanic_id or session.status != "completed":
        raise Forbidden("Only the mechanic of a completed session can write its notes.")
    notes = (notes or "").strip()
    if not notes or len(notes) > 5000:
        raise ValidationError("Notes must be between 1 and 5,000 characters.", field="notes")
    session.mechanic_notes = notes
    timeline.record(session_id, "notes", "Mechanic notes saved", actor_id=mechanic_id)
    return session


def rate_session(session_id, customer_id, rating, review):
    """The customer rates a completed session once."""
    session = _get_session(session_id)
    if session.customer_id != customer_id:
        raise Forbidden("Only the customer can rate this session.")
    if rating not in (1, 2, 3, 4, 5):
        raise ValidationError("Choose a rating from 1 to 5 stars.", field="rating")
    review = (review or "").strip()
    if len(review) > 2000:
        raise ValidationError("Reviews are limited to 2,000 characters.", field="review")
    if not _guarded(ConsultSession, session_id, ("completed",), ConsultSession.rating.is_(None),
                    rating=rating, review=review or None, rated_at=clock.now()):
        raise Conflict("This session has already been rated or has not finished.")
    db.session.execute(update(MechanicProfile).where(MechanicProfile.user_id == session.mechanic_id).values(
        rating_sum=MechanicProfile.rating_sum + rating, rating_count=MechanicProfile.rating_count + 1))
    timeline.record(session_id, "rated", f"Rated {rating}/5", actor_id=customer_id)
    return session
