"""The waitlist: customers who want help now while no mechanic is online.

- **Join** only when no mechanic is online (otherwise there is nobody to wait for: the customer
  is told to continue booking). One waiting entry per customer (a partial unique index); the
  entry keeps the customer's book-now draft, so the link they get resumes their booking.
- **Position**: 1 is next, in order of joining (ties on the second by id).
- **When a mechanic comes online** (presence runs `jobs.waitlist.mechanic_came_online_job`),
  *every* waiting customer is notified at once, in order of joining (position 1 first): an
  in-app notice, an e-mail, and their open waitlist page changes without a reload. Each entry
  is marked notified by a guarded update, so two mechanics coming online together, or a job
  run twice, tell nobody twice. Why not one at a time: joining is refused while a mechanic is
  online (a newcomer is told to book straight away), so holding earlier customers back in line
  behind a mechanic who is already online would serve later arrivals first. The order still
  matters: notices go out by position, and the earlier customer's booking reaches the
  mechanics' dashboards first.
- **Estimate**: the median wait of past waitlist entries that joined within an hour of this
  time of day over the last 14 days (notified: joined -> notified; expired: the full 24 hours,
  as nobody came). Entries the customer left are left out (we only know they waited at least
  that long). Fewer than 3 such waits: "we can't estimate yet". The presence columns keep only
  each mechanic's latest change, not a history, so the waitlist's own record is the history
  there is.
- **Expiry**: 24 hours after joining (the periodic sweep; the customer gets an in-app notice).
"""
import statistics
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import BookingDraft, ConsultSession, User, WaitlistEntry
from autodoctor.realtime import emit
from autodoctor.services import notifications, presence
from autodoctor.services.errors import Conflict
from autodoctor.urls import url

WAIT_FOR = timedelta(hours=24)
ESTIMATE_DAYS = 14
ESTIMATE_WINDOW_MINUTES = 60  # joins within this many minutes of the current time of day
ESTIMATE_MIN_SAMPLES = 3
NOTIFIED_SHOWN_FOR = timedelta(hours=1)  # the waitlist page shows "a mechanic came online" this long
LIVE_POSITIONS = 1000  # at most this many waiting customers get their new position pushed at once
ACTIVE = ("pending", "waiting", "live")


class MechanicOnline(Conflict):
    """Someone is online: nothing to wait for."""

    def __init__(self):
        super().__init__("A mechanic is online — continue booking.")


class ActiveSession(Conflict):
    def __init__(self):
        super().__init__("You already have an active session. Finish or cancel it before starting another.")


# Neighbours: presence, and the wizard's resume link ------------------------------------------------


def online_mechanic_ids():
    """The mechanics online now, busy ones included: a busy mechanic is still "online" to the
    customer, and only offline -> online wakes the waitlist."""
    return presence.online_ids(include_busy=True)


def book_path():
    """The book-now wizard (it resumes the customer's draft)."""
    return url("customer.book_index")


def resume_url(customer_id, **url_options):
    """Where the customer's booking continues (the wizard at their draft's step)."""
    from autodoctor.services import booking

    return booking.resume_url(customer_id, **url_options)


# Joining, leaving, where one stands ----------------------------------------------------------------


def waiting_entry(customer_id):
    return db.session.scalar(select(WaitlistEntry).where(
        WaitlistEntry.customer_id == customer_id, WaitlistEntry.status == "waiting"))


def latest_entry(customer_id):
    return db.session.scalar(select(WaitlistEntry).where(WaitlistEntry.customer_id == customer_id)
                             .order_by(WaitlistEntry.id.desc()).limit(1))


def _own_draft_id(customer_id, draft_id):
    """The customer's own draft: the one named (if it is theirs), else their only one."""
    query = select(BookingDraft.id).where(BookingDraft.customer_id == customer_id)
    if draft_id is not None and not 0 < draft_id < 2**31:
        return None  # not an id at all
    if draft_id is not None:
        query = query.where(BookingDraft.id == draft_id)
    return db.session.scalar(query)


def join(customer_id, draft_id=None, now=None):
    """Put the customer on the waitlist (or return their place, when they are already on it)."""
    now = now or clock.now()
    entry = waiting_entry(customer_id)
    if entry is not None:
        return entry
    if db.session.scalar(select(ConsultSession.id).where(
            ConsultSession.customer_id == customer_id, ConsultSession.status.in_(ACTIVE))) is not None:
        raise ActiveSession()
    if online_mechanic_ids():
        raise MechanicOnline()
    entry = WaitlistEntry(customer_id=customer_id, draft_id=_own_draft_id(customer_id, draft_id), status="waiting",
                          created_at=now, expires_at=now + WAIT_FOR)
    try:
        with db.session.begin_nested():
            db.session.add(entry)
    except IntegrityError:  # the same customer joined in another tab at the same moment
        return waiting_entry(customer_id)
    emit("waitlist.changed", customer_ids=[customer_id])
    return entry


def leave(customer_id, now=None):
    """Take the customer off the waitlist; True when they were on it."""
    done = db.session.execute(
        update(WaitlistEntry).where(WaitlistEntry.customer_id == customer_id, WaitlistEntry.status == "waiting")
        .values(status="left", closed_at=now or clock.now()), execution_options={"synchronize_session": False}).rowcount
    if done:
        emit("waitlist.changed", customer_ids=[customer_id])  # everyone behind moves up
    return bool(done)


def booked(customer_id, now=None):
    """The customer's paid session has opened: their entry (waiting, or notified and coming
    back through the link) is done. True when there was one."""
    done = db.session.execute(
        update(WaitlistEntry).where(WaitlistEntry.customer_id == customer_id,
                                    WaitlistEntry.status.in_(("waiting", "notified")))
        .values(status="booked", closed_at=now or clock.now()), execution_options={"synchronize_session": False}).rowcount
    if done:
        emit("waitlist.changed", customer_ids=[customer_id])
    return bool(done)


def _ahead_or_same(entry):
    return or_(WaitlistEntry.created_at < entry.created_at,
               and_(WaitlistEntry.created_at == entry.created_at, WaitlistEntry.id <= entry.id))


def position(entry):
    """1 = next; None when the entry is not waiting."""
    if entry is None or entry.status != "waiting":
        return None
    return db.session.scalar(select(db.func.count(WaitlistEntry.id)).where(
        WaitlistEntry.status == "waiting", _ahead_or_same(entry)))


def waiting_in_order(limit=None):
    """Waiting entries, first in line first."""
    query = select(WaitlistEntry).where(WaitlistEntry.status == "waiting").order_by(
        WaitlistEntry.created_at, WaitlistEntry.id)
    return db.session.scalars(query.limit(limit) if limit else query).all()


@dataclass(frozen=True)
class Status:
    """What the customer's waitlist page shows."""

    state: str  # "waiting" | "notified" | "none"
    entry: object = None
    position: int | None = None
    online: bool = False  # a mechanic is online now
    expired: bool = False  # their last place ran out (in the last 24 hours)
    link: str | None = None  # where booking continues


def status_for(customer_id, now=None, online=None):
    now = now or clock.now()
    online = bool(online_mechanic_ids()) if online is None else online
    entry = latest_entry(customer_id)
    link = resume_url(customer_id)
    if entry is not None and entry.status == "waiting":
        return Status("waiting", entry, position(entry), online, link=link)
    if entry is not None and entry.status == "notified" and entry.notified_at >= now - NOTIFIED_SHOWN_FOR:
        return Status("notified", entry, None, online, link=link)
    expired = (entry is not None and entry.status == "expired" and (entry.closed_at or now) >= now - WAIT_FOR)
    return Status("none", entry, None, online, expired, link=link)


# The estimate ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    minutes: int | None  # the median wait, None when there is too little history
    samples: int

    @property
    def text(self):
        if self.minutes is None:
            return ("We can't estimate the wait yet: there isn't enough history of mechanics coming online "
                    "at this time of day.")
        if self.minutes >= WAIT_FOR.total_seconds() // 60:
            return "At this time of day mechanics often don't come online within 24 hours."
        return (f"Mechanics usually come online within about {_duration(self.minutes)} at this time of day "
                f"(the middle of {self.samples} recent waits).")


def _duration(minutes):
    if minutes <= 1:
        return "a minute"
    if minutes < 10:
        return f"{minutes} minutes"
    if minutes < 90:
        return f"{-(-minutes // 5) * 5} minutes"  # rounded up to 5
    hours = round(minutes / 60)
    return "1 hour" if hours == 1 else f"{hours} hours"


def _minute_of_day(moment):
    return moment.hour * 60 + moment.minute


def estimate(now=None):
    """The median wait of past entries that joined at about this time of day (see the module doc)."""
    now = now or clock.now()
    rows = db.session.execute(select(WaitlistEntry.created_at, WaitlistEntry.notified_at, WaitlistEntry.status,
                                     WaitlistEntry.expires_at).where(
        WaitlistEntry.created_at >= now - timedelta(days=ESTIMATE_DAYS), WaitlistEntry.created_at < now,
        WaitlistEntry.status.in_(("notified", "expired")))
        .order_by(WaitlistEntry.created_at.desc()).limit(5000)).all()
    here = _minute_of_day(now)
    waits = []
    for created_at, notified_at, status, expires_at in rows:
        gap = abs(_minute_of_day(created_at) - here)
        if min(gap, 1440 - gap) > ESTIMATE_WINDOW_MINUTES:
            continue
        end = notified_at if status == "notified" and notified_at else expires_at
        waits.append(max(0.0, (end - created_at).total_seconds() / 60))
    if len(waits) < ESTIMATE_MIN_SAMPLES:
        return Estimate(None, len(waits))
    return Estimate(max(1, round(statistics.median(waits))), len(waits))


# A mechanic came online ----------------------------------------------------------------------------


def mechanic_came_online(mechanic_id, now=None):
    """Tell every waiting customer, in order of joining, that a mechanic is online (in-app and
    by e-mail, each entry once); returns how many were told. Nothing happens when the mechanic
    is no longer online by the time this runs."""
    now = now or clock.now()
    mechanic = db.session.get(User, mechanic_id)
    profile = mechanic.mechanic_profile if mechanic is not None else None
    if (profile is None or mechanic.role != "mechanic" or not mechanic.is_active_account or not profile.approved
            or profile.presence != "online"):
        return 0
    told, changed = 0, []
    for entry in waiting_in_order():
        if entry.expires_at <= now:
            continue  # the sweep expires it
        busy = db.session.scalar(select(ConsultSession.id).where(
            ConsultSession.customer_id == entry.customer_id, ConsultSession.status.in_(ACTIVE))) is not None
        done = db.session.execute(
            update(WaitlistEntry).where(WaitlistEntry.id == entry.id, WaitlistEntry.status == "waiting")
            .values(status="booked" if busy else "notified", notified_at=None if busy else now,
                    closed_at=now if busy else None),
            execution_options={"synchronize_session": False}).rowcount
        if not done:
            continue  # told already, or left at this very moment
        changed.append(entry.customer_id)
        if busy:  # they found help in the meantime
            continue
        _tell(entry, mechanic)
        told += 1
    if changed:
        emit("waitlist.changed", customer_ids=changed)
    return told


def _tell(entry, mechanic):
    customer = entry.customer
    link = resume_url(customer.id)
    notifications.notify(customer.id, "waitlist_online",
                         f"{mechanic.full_name} is online now — continue your booking.", link=link)
    notifications.queue_email(customer.email, "A mechanic is online now — continue your AutoDoctor booking",
                              "emails/waitlist_online.txt", customer=customer, mechanic=mechanic,
                              link=resume_url(customer.id, _external=True))


# Expiry (the sweep) ------------------------------------------------------------------------------------


def due(now):
    """Ids of waiting entries past their 24 hours (for the sweep)."""
    return select(WaitlistEntry.id).where(WaitlistEntry.status == "waiting", WaitlistEntry.expires_at <= now)


def expire_entry(entry_id, now=None):
    """Expire one overdue waiting entry (guarded); the customer gets an in-app notice."""
    now = now or clock.now()
    done = db.session.execute(
        update(WaitlistEntry).where(WaitlistEntry.id == entry_id, WaitlistEntry.status == "waiting",
                                    WaitlistEntry.expires_at <= now)
        .values(status="expired", closed_at=now), execution_options={"synchronize_session": False}).rowcount
    if not done:
        return False
    customer_id = db.session.scalar(select(WaitlistEntry.customer_id).where(WaitlistEntry.id == entry_id))
    notifications.notify(customer_id, "waitlist_expired",
                         "Your place on the waitlist ran out after 24 hours. You can join again any time.",
                         link=url("customer.waitlist_show"))
    emit("waitlist.changed", customer_ids=[customer_id])
    return True


def expire(now=None):
    """Expire every overdue waiting entry; returns how many."""
    now = now or clock.now()
    return sum(1 for entry_id in db.session.scalars(due(now)).all() if expire_entry(entry_id, now))
