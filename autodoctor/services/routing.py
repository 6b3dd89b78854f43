"""Routing a new request: offered first to the mechanics who match it best, to everyone after
a short window.

- `hold(request, now)` (lifecycle.open_session, in the request's own transaction): when at least
  one mechanic is online and free, the request is held back from the general list
  (`broadcast_at = now + WINDOW`) so nobody sees it appear and vanish while the routing job
  runs. When nobody is online it is visible to everyone at once (`broadcast_at` NULL).
- `route_request(request_id, now)` (an RQ job, right after the commit): ranks the online, free
  mechanics (matching.rank on the intake's vehicle, concern and place), stores the best
  TARGETS as RequestOffer rows (rank, score, reasons) and sets `broadcast_at = now + WINDOW`.
  The customer's picked mechanic, when online and free, is offered first. Idempotent: a
  request that already has offers keeps them (and the unique request/mechanic constraint
  settles two runs at once). Nobody to offer it to: visible to everyone at once. A request
  that was not held (nobody online when it came in) is already on everyone's list and stays
  there: taking it away again would be worse than not targeting it.
- `broadcast(request_id, now)` (a job scheduled at broadcast_at, and a sweep step): once the
  window has passed, `broadcast_at` is cleared (a guarded UPDATE, so it happens once; NULL
  means "everyone", which it now is) and every dashboard is told.

A lost routing job never hides a request for good: the sweep's broadcast step opens every held
request to everyone when its window ends (a request held without offers is delayed by at most
the window plus one sweep interval). Visibility is always computed from `broadcast_at` and the
clock, so even before the broadcast job runs, a list rendered after the window includes it.
"""
from datetime import timedelta

from sqlalchemy import and_, exists, or_, update
from sqlalchemy.exc import IntegrityError

from autodoctor import clock, jobs
from autodoctor.extensions import db
from autodoctor.models import ConsultSession, Intake, RequestOffer, SessionRequest, User
from autodoctor.models.requests import OPEN_REQUEST_STATUSES
from autodoctor.realtime import emit
from autodoctor.services import matching, timeline

WINDOW = timedelta(seconds=60)
TARGETS = 3
PICKED_REASON = "the customer picked you"


# --- who sees what ---------------------------------------------------------------------------

def visible_to_everyone(now):
    """SQL: the request is on every mechanic's general list (never held, or its window is over)."""
    return or_(SessionRequest.broadcast_at.is_(None), SessionRequest.broadcast_at <= now)


def offered_to(mechanic_id):
    """SQL: the request was offered to this mechanic first."""
    return exists().where(RequestOffer.request_id == SessionRequest.id, RequestOffer.mechanic_id == mechanic_id)


def approved(mechanic_id):
    """SQL: the mechanic is approved (services.applications): nobody else sees or takes requests."""
    from autodoctor.models import MechanicProfile

    return exists().where(MechanicProfile.user_id == mechanic_id, MechanicProfile.approved.is_(True))


def visible_to(mechanic_id, now):
    return and_(approved(mechanic_id), or_(visible_to_everyone(now), offered_to(mechanic_id)))


def visible_request_ids(mechanic_id, now=None):
    """Ids of the open requests this mechanic may see and accept now."""
    now = now or clock.now()
    return set(db.session.scalars(db.select(SessionRequest.id).where(
        SessionRequest.status.in_(OPEN_REQUEST_STATUSES), visible_to(mechanic_id, now))))


def offers_for(mechanic_id, now=None):
    """The mechanic's targeted offers still inside their window (oldest request first), with
    everything a card shows loaded. Once the window ends the request is on the general list
    instead, so it never shows twice."""
    now = now or clock.now()
    session = db.joinedload(RequestOffer.request).joinedload(SessionRequest.session)
    intake = session.joinedload(ConsultSession.intake)
    return db.session.scalars(
        db.select(RequestOffer).join(SessionRequest, SessionRequest.id == RequestOffer.request_id).where(
            RequestOffer.mechanic_id == mechanic_id, SessionRequest.status.in_(OPEN_REQUEST_STATUSES),
            SessionRequest.broadcast_at > now, approved(mechanic_id))
        .order_by(SessionRequest.created_at, SessionRequest.id)
        .options(intake.joinedload(Intake.vehicle), intake.selectinload(Intake.photos),
                 session.joinedload(ConsultSession.plan))).unique().all()


def _offers_of(request_id):
    return list(db.session.scalars(db.select(RequestOffer).where(RequestOffer.request_id == request_id)
                                   .order_by(RequestOffer.rank)))


def offered_mechanic_ids(request_id):
    if request_id is None:
        return []
    return list(db.session.scalars(db.select(RequestOffer.mechanic_id).where(RequestOffer.request_id == request_id)
                                   .order_by(RequestOffer.rank)))


def taking_requests(mechanic_id):
    """Whether the mechanic's dashboard lists requests: they are approved and their "Taking
    requests" toggle is on (services.presence; the toggle, not the presence column, so a
    dashboard opened after a break shows the list at once instead of waiting for its stream's
    first beat)."""
    from autodoctor.models import MechanicProfile

    return bool(db.session.scalar(db.select(MechanicProfile.online).where(
        MechanicProfile.user_id == mechanic_id, MechanicProfile.approved.is_(True))))


def opens_at_label(request):
    """"14:05 UTC": when a held request opens to everyone."""
    return request.broadcast_at.strftime("%H:%M UTC") if request.broadcast_at else ""


# --- routing ---------------------------------------------------------------------------------

def anyone_available():
    """Whether any approved, active mechanic is online and not in a waiting/live session (one query)."""
    from autodoctor.models import MechanicProfile

    return db.session.scalar(db.select(exists().where(
        MechanicProfile.user_id == User.id, User.role == "mechanic", User.is_active_account, MechanicProfile.approved,
        MechanicProfile.presence == "online", matching._available()))) or False


def hold(request, now=None):
    """A new request waits for its routing job (off every general list) when someone could get
    a targeted offer; with nobody online it goes to everyone at once."""
    if anyone_available():
        request.broadcast_at = (now or clock.now()) + WINDOW


def targets(intake, limit=TARGETS):
    """The best `limit` online, free mechanics for `intake` as matching.Match, the customer's
    picked mechanic (when online and free) first, with PICKED_REASON (0 points) added."""
    pool = matching.candidates(online_only=True, available_only=True)
    wanted = matching.wanted_for_intake(intake)
    picked = next((c for c in pool if c.id == intake.preferred_mechanic_id), None) \
        if intake.preferred_mechanic_id else None
    if picked is None:
        return matching.rank(wanted, pool, limit=limit)
    first = matching.rank(wanted, [picked], limit=1)[0]
    first = matching.Match(first.mechanic_id, first.score, ((PICKED_REASON, 0),) + first.reasons)
    return [first] + matching.rank(wanted, [c for c in pool if c.id != picked.id], limit=limit - 1)


def route_request(request_id, now=None):
    """Offer an open request to its best online matches first (see the module docstring).
    Returns the request's offers (existing ones when it was routed already)."""
    from autodoctor.jobs import routing as routing_jobs

    now = now or clock.now()
    request = db.session.get(SessionRequest, request_id)
    if request is None or request.status not in OPEN_REQUEST_STATUSES:
        return []
    existing = _offers_of(request_id)
    if existing:
        return existing
    if request.broadcast_at is None:  # not held (nobody was online): already on everyone's list
        return []
    if request.broadcast_at <= now:  # the job ran after the window: no head start left to give
        broadcast(request_id, now)
        return []
    intake = request.session.intake
    matches = targets(intake)
    if not matches:
        if _guarded_broadcast_at(request, request.broadcast_at, None):
            timeline.record(request.session_id, "broadcast", "No mechanic online to offer it to first; "
                            "offered to everyone", request_id=request_id)
            emit("request.changed", request_id=request_id, session_id=request.session_id)
        return []
    offers = [RequestOffer(request_id=request_id, mechanic_id=m.mechanic_id, rank=n, score=m.score,
                           reasons=m.phrases) for n, m in enumerate(matches, start=1)]
    picked = intake.preferred_mechanic_id if matches[0].reasons[0][0] == PICKED_REASON else None
    opens_at = now + WINDOW
    try:
        db.session.add_all(offers)
        db.session.flush()
    except IntegrityError:  # another run of this job inserted them first (unique request/mechanic): keep those
        db.session.rollback()
        return _offers_of(request_id)
    if not _guarded_broadcast_at(request, request.broadcast_at, opens_at, preferred_mechanic_id=picked):
        return offers
    names = dict(db.session.execute(db.select(User.id, User.full_name).where(
        User.id.in_([m.mechanic_id for m in matches]))).all())
    timeline.record(request.session_id, "offered",
                    f"Offered first to {', '.join(names.get(m.mechanic_id, '?') for m in matches)}; "
                    f"everyone from {opens_at.strftime('%H:%M UTC')}", request_id=request_id)
    jobs.schedule(WINDOW, routing_jobs.broadcast_job, request_id)
    emit("request.changed", request_id=request_id, session_id=request.session_id)
    return offers


def _guarded_broadcast_at(request, expected, value, **values):
    """Set broadcast_at from `expected` to `value` on an open request; True if it changed."""
    condition = SessionRequest.broadcast_at.is_(None) if expected is None else SessionRequest.broadcast_at == expected
    result = db.session.execute(
        update(SessionRequest).where(SessionRequest.id == request.id, SessionRequest.status.in_(OPEN_REQUEST_STATUSES),
                                     condition).values(broadcast_at=value, **values),
        execution_options={"synchronize_session": False})
    db.session.expire(request)
    return result.rowcount == 1


def broadcast(request_id, now=None, early=False):
    """The window is over (or, `early`, cut short): the request goes on everyone's list (once).
    True if it changed."""
    now = now or clock.now()
    held = SessionRequest.broadcast_at.is_not(None) if early else SessionRequest.broadcast_at <= now
    result = db.session.execute(
        update(SessionRequest).where(SessionRequest.id == request_id, SessionRequest.status.in_(OPEN_REQUEST_STATUSES),
                                     held).values(broadcast_at=None),
        execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        return False
    request = db.session.get(SessionRequest, request_id)
    db.session.expire(request)
    timeline.record(request.session_id, "broadcast", "Offered to every online mechanic", request_id=request_id)
    emit("request.changed", request_id=request_id, session_id=request.session_id)
    return True


def due_for_broadcast(now):
    """Sweep: open requests whose window is over but which are still held."""
    return db.select(SessionRequest.id).where(SessionRequest.status.in_(OPEN_REQUEST_STATUSES),
                                              SessionRequest.broadcast_at <= now)
