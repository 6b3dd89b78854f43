"""Mechanic presence: online, busy or offline.

A mechanic is *online* while their "Taking requests" toggle (`mechanic_profiles.online`) is on
and their dashboard stream has been seen within the presence window
(`PRESENCE_TIMEOUT_SECONDS`); *busy* whenever they have a waiting or live session, toggle or
not; *offline* otherwise. The `presence` column holds online/offline and changes only through
guarded UPDATEs (`WHERE presence = <the other value>`), so of two tabs beating at once only one
announces the change; each real change emits "presence.changed" (mechanic_id=, presence=).

The dashboard stream is the heartbeat: `seen()` on connect and at every keepalive (at least
three times a window). Closing the dashboard stops the beats; the sweep's `expire()` then turns
the mechanic offline. Going offline -> online enqueues the waitlist's
`mechanic_came_online_job`. Whoever calls these commits.
"""
import importlib
import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, update

from autodoctor import clock, jobs
from autodoctor.extensions import db
from autodoctor.models import ConsultSession, MechanicProfile, User
from autodoctor.realtime import emit
from autodoctor.services.errors import Forbidden, NotFound

log = logging.getLogger(__name__)

STATUSES = ("online", "busy", "offline")
ACTIVE_SESSION = ("waiting", "live")
WAITLIST_JOBS = "autodoctor.jobs.waitlist"
# The approval gate (services.applications): a mechanic not approved yet can never turn the
# switch on nor be online.
_APPROVED = (MechanicProfile.approved.is_(True),)
NOT_APPROVED = "You can take requests once your application is approved."


def window():
    """How long a dashboard stream may go unseen before its mechanic is offline."""
    return timedelta(seconds=current_app.config.get("PRESENCE_TIMEOUT_SECONDS", 60))


def heartbeat_seconds():
    """The dashboard stream's keepalive: at least three beats a window, never rarer than the SSE keepalive."""
    return max(1.0, min(float(current_app.config["SSE_KEEPALIVE_SECONDS"]), window().total_seconds() / 3))


def _throttle():
    # Beats (one per tab, every window/3) write last_seen_at at most once per window/6: a second
    # tab or a reconnect storm costs no extra writes, and the newest write is never so old that
    # a live dashboard could look gone (window/3 + window/6 < window).
    return window() / 6


def status(mechanic_id):
    """'online', 'busy' or 'offline' for one mechanic (unknown ids are offline)."""
    return statuses([mechanic_id]).get(mechanic_id, "offline")


def statuses(mechanic_ids):
    """{mechanic_id: status} for the given ids, in two queries (an id that is no mechanic: offline)."""
    ids = {int(i) for i in mechanic_ids}
    if not ids:
        return {}
    rows = db.session.execute(db.select(MechanicProfile.user_id, MechanicProfile.presence)
                              .where(MechanicProfile.user_id.in_(ids))).all()
    busy = set(db.session.scalars(db.select(ConsultSession.mechanic_id).where(
        ConsultSession.mechanic_id.in_(ids), ConsultSession.status.in_(ACTIVE_SESSION))))
    found = {user_id: "busy" if user_id in busy else presence for user_id, presence in rows}
    return {mechanic_id: found.get(mechanic_id, "offline") for mechanic_id in ids}  # unknown ids: offline


def online_ids(include_busy=False):
    """Approved, active mechanics who are online — by default only those free to take a
    request now (not in a waiting or live session)."""
    query = db.select(MechanicProfile.user_id).join(User, User.id == MechanicProfile.user_id).where(
        MechanicProfile.presence == "online", MechanicProfile.approved, User.is_active_account)
    if not include_busy:
        query = query.where(~db.select(ConsultSession.id).where(
            ConsultSession.mechanic_id == MechanicProfile.user_id,
            ConsultSession.status.in_(ACTIVE_SESSION)).exists())
    return set(db.session.scalars(query))


def set_online(mechanic_id, on):
    """The dashboard toggle: off -> offline at once; on -> online at once if the dashboard
    stream was seen within the window (else at its next beat)."""
    now = clock.now()
    result = db.session.execute(update(MechanicProfile).where(MechanicProfile.user_id == mechanic_id,
                                                              *(_APPROVED if on else ()))
                                .values(online=bool(on)), execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        if on and db.session.scalar(db.select(MechanicProfile.user_id).where(MechanicProfile.user_id == mechanic_id)):
            raise Forbidden(NOT_APPROVED)
        raise NotFound("Only mechanics can take requests.")
    db.session.expire_all()
    if on:
        return _change(mechanic_id, "online", now, MechanicProfile.last_seen_at >= now - window())
    return _change(mechanic_id, "offline", now)


def seen(mechanic_id):
    """A sign of life from the mechanic's dashboard stream: record it (at most once per
    window/6) and, with the toggle on, go online. True if anything was written."""
    now = clock.now()
    result = db.session.execute(
        update(MechanicProfile).where(
            MechanicProfile.user_id == mechanic_id,
            or_(MechanicProfile.last_seen_at.is_(None), MechanicProfile.last_seen_at < now - _throttle()))
        .values(last_seen_at=now), execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        return False  # seen moments ago: presence was settled then (and by set_online since)
    db.session.expire_all()
    _change(mechanic_id, "online", now)
    return True


def expire(now=None):
    """Turn offline every online mechanic whose dashboard stream has been gone for the window;
    returns how many. A beat landing meanwhile wins (the UPDATE checks again)."""
    now = now or clock.now()
    gone = or_(MechanicProfile.last_seen_at.is_(None), MechanicProfile.last_seen_at < now - window())
    ids = db.session.scalars(db.select(MechanicProfile.user_id).where(
        MechanicProfile.presence == "online", gone).order_by(MechanicProfile.user_id).limit(1000)).all()
    return sum(_change(mechanic_id, "offline", now, gone) for mechanic_id in ids)


def session_mechanic_id(session_id):
    """The mechanic of a session (for presenters of session events: busy comes and goes)."""
    if session_id is None:
        return None
    return db.session.scalar(db.select(ConsultSession.mechanic_id).where(ConsultSession.id == session_id))


def _change(mechanic_id, to, now, *conditions):
    """The guarded presence change; emits and (going online) enqueues the waitlist job only
    if this call is the one that changed it."""
    if to == "online":
        conditions = (MechanicProfile.online.is_(True), *_APPROVED, *conditions)
    result = db.session.execute(
        update(MechanicProfile).where(MechanicProfile.user_id == mechanic_id,
                                      MechanicProfile.presence == ("offline" if to == "online" else "online"),
                                      *conditions)
        .values(presence=to, presence_changed_at=now), execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        return False
    db.session.expire_all()
    emit("presence.changed", mechanic_id=mechanic_id, presence=to)
    if to == "online":
        _enqueue_came_online(mechanic_id)
    return True


def _enqueue_came_online(mechanic_id):
    try:  # imported by name when needed: the waitlist ships its jobs module separately
        waitlist_jobs = importlib.import_module(WAITLIST_JOBS)
    except ModuleNotFoundError as exc:
        if exc.name != WAITLIST_JOBS:
            raise
        log.warning("no %s yet: mechanic %s came online, nobody to notify", WAITLIST_JOBS, mechanic_id)
        return
    jobs.enqueue(waitlist_jobs.mechanic_came_online_job, mechanic_id)
