"""What the admin dashboard and the unattended queue show: today's numbers, the requests that
need a person, and the mechanics an admin may hand them to.

Every number is one aggregate over an indexed range (sessions(created_at),
sessions(status, created_at), session_requests(status, created_at), payments(created_at),
mechanic_profiles(presence)), so the dashboard stays fast however much history there is.
"today" is the UTC day."""
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, or_

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import (
    ConsultSession,
    LedgerEntry,
    MechanicProfile,
    Payment,
    SessionRequest,
    User,
)
from autodoctor.services import lifecycle, money

EXPIRING_WITHIN = timedelta(minutes=30)
ELIGIBLE_LIMIT = 50  # mechanics listed per assign menu (online ones first)
# A payment is paid within minutes of its checkout and a request is accepted within its few
# hours of life: these bounds let the date columns that have an index narrow the scan.
_PAID_WITHIN = timedelta(days=2)
_ACCEPTED_WITHIN = timedelta(days=2)


@dataclass(frozen=True)
class Metrics:
    day: date
    sessions_today: int
    live_now: int
    unattended_now: int
    revenue_cents: int
    platform_fees_cents: int
    accept_seconds: int | None  # mean time to accept of requests accepted today; None: none accepted
    accepted_today: int
    mechanics_online: int


def today_bounds(now=None):
    """[start, end) of the current UTC day."""
    now = now or clock.now()
    start = datetime(now.year, now.month, now.day)
    return start, start + timedelta(days=1)


def _count(*where, column):
    return db.session.scalar(db.select(func.count(column)).where(*where)) or 0


def unattended_count():
    return _count(SessionRequest.status == "unattended", column=SessionRequest.id)


def _seconds_between(earlier, later):
    """SQL for (later - earlier) in seconds, on Postgres and SQLite."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400


def metrics(now=None):
    """Today's numbers for the dashboard tiles."""
    now = now or clock.now()
    start, end = today_bounds(now)
    revenue = db.session.scalar(db.select(func.coalesce(func.sum(Payment.amount_cents + Payment.credit_cents), 0))
                                .where(Payment.created_at >= start - _PAID_WITHIN, Payment.created_at < end,
                                       Payment.paid_at >= start, Payment.paid_at < end,
                                       Payment.status.in_(("paid", "refunded"))))
    fees = db.session.scalar(db.select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
        LedgerEntry.account == money.PLATFORM, LedgerEntry.created_at >= start, LedgerEntry.created_at < end))
    accepted, mean = db.session.execute(
        db.select(func.count(SessionRequest.id),
                  func.avg(_seconds_between(SessionRequest.created_at, SessionRequest.accepted_at)))
        .where(SessionRequest.status == "accepted", SessionRequest.created_at >= start - _ACCEPTED_WITHIN,
               SessionRequest.created_at < end, SessionRequest.accepted_at >= start,
               SessionRequest.accepted_at < end)).one()
    return Metrics(
        day=start.date(),
        sessions_today=_count(ConsultSession.created_at >= start, ConsultSession.created_at < end,
                              column=ConsultSession.id),
        live_now=_count(ConsultSession.status == "live", column=ConsultSession.id),
        unattended_now=unattended_count(),
        revenue_cents=int(revenue or 0),
        platform_fees_cents=int(fees or 0),
        accept_seconds=round(float(mean)) if accepted and mean is not None else None,
        accepted_today=accepted or 0,
        mechanics_online=_count(MechanicProfile.presence == "online", column=MechanicProfile.user_id),
    )


def duration_label(seconds):
    """2 min 10 s; 1 h 5 min; 45 s."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


@dataclass(frozen=True)
class QueueItem:
    request: SessionRequest
    waiting_seconds: int
    expires_at: datetime
    expires_in_seconds: int

    @property
    def expiring(self):
        return self.expires_in_seconds <= EXPIRING_WITHIN.total_seconds()


def queue(now=None):
    """Unattended requests, and open requests within 30 minutes of expiry, oldest first."""
    now = now or clock.now()
    soon = now + EXPIRING_WITHIN
    near_expiry = and_(SessionRequest.status == "pending", or_(
        and_(SessionRequest.extended_until.is_(None), SessionRequest.created_at <= soon - lifecycle.EXPIRE_AFTER),
        SessionRequest.extended_until <= soon))
    session = db.joinedload(SessionRequest.session)
    rows = db.session.scalars(
        db.select(SessionRequest).where(or_(SessionRequest.status == "unattended", near_expiry))
        .order_by(SessionRequest.created_at, SessionRequest.id)
        .options(session.joinedload(ConsultSession.plan), session.joinedload(ConsultSession.intake),
                 db.joinedload(SessionRequest.customer))).unique().all()
    items = []
    for r in rows:
        expires_at = lifecycle.request_deadline(r)
        items.append(QueueItem(r, int((now - r.created_at).total_seconds()), expires_at,
                               int((expires_at - now).total_seconds())))
    return items


@dataclass(frozen=True)
class EligibleMechanic:
    id: int
    full_name: str
    online: bool


def eligible_mechanics(limit=ELIGIBLE_LIMIT):
    """Mechanics an admin may assign a request to: active, approved and not in a waiting or
    live session; online ones first, then by name."""
    busy = db.select(ConsultSession.mechanic_id).where(ConsultSession.status.in_(("waiting", "live")),
                                                       ConsultSession.mechanic_id.is_not(None))
    online = MechanicProfile.presence == "online"
    rows = db.session.execute(
        db.select(User.id, User.full_name, online.label("online")).join(MechanicProfile, MechanicProfile.user_id == User.id)
        .where(User.role == "mechanic", User.is_active_account, MechanicProfile.approved.is_(True),
               User.id.not_in(busy))
        .order_by(online.desc(), User.full_name, User.id).limit(limit)).all()
    return [EligibleMechanic(row.id, row.full_name, bool(row.online)) for row in rows]
