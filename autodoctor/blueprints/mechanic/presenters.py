"""Live fragments for mechanics' dashboards. The general list (open requests visible to
everyone: not, or no longer, held for targeted offers) is rendered once per change and sent
whole to every dashboard (a snapshot, so a missed or repeated message can never leave a stale
or doubled card). A mechanic's targeted offers, highlighted with the reasons, go to their own
channel, rendered per mechanic (at most routing.TARGETS of them per request change); the same
fragment tells a mechanic whose "Taking requests" toggle is off that requests are hidden (the
dashboard's CSS hides the general list then)."""
from flask import render_template

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import ConsultSession, Intake, SessionEvent, SessionRequest
from autodoctor.models.requests import OPEN_REQUEST_STATUSES
from autodoctor.realtime import Message, presenter
from autodoctor.services import routing

CHANNEL = "mechanics"


def open_requests(now=None):
    """The general list: open requests every mechanic sees (routing.visible_to_everyone)."""
    # Everything a card shows is loaded here: the list is rendered on every change and every
    # (re)connect, so a lazy load per card would cost two queries per open request each time.
    intake = db.joinedload(SessionRequest.session).joinedload(ConsultSession.intake)
    return db.session.scalars(
        db.select(SessionRequest).join(ConsultSession)
        .where(SessionRequest.status.in_(OPEN_REQUEST_STATUSES), routing.visible_to_everyone(now or clock.now()))
        .order_by(SessionRequest.created_at, SessionRequest.id)
        .options(intake.joinedload(Intake.vehicle), intake.selectinload(Intake.photos),
                 db.joinedload(SessionRequest.session).joinedload(ConsultSession.plan))).unique().all()


def last_event_id():
    return str(db.session.scalar(db.select(db.func.max(SessionEvent.id))) or 0)


def request_list_message():
    html = render_template("mechanic/dashboard/_request_list.html", requests=open_requests(), oob=True)
    return Message(channel=CHANNEL, event="requests", data=html, id=last_event_id())


def active_session_message(mechanic_id):
    session = db.session.scalar(db.select(ConsultSession).where(
        ConsultSession.mechanic_id == mechanic_id, ConsultSession.status.in_(("waiting", "live"))))
    html = render_template("mechanic/dashboard/_active.html", active=session, oob=True)
    return Message(channel=f"user:{mechanic_id}", event="active", data=html, id=last_event_id())


def offers_context(mechanic_id, now=None):
    """What templates/mechanic/dashboard/_offers.html needs for one mechanic."""
    taking = routing.taking_requests(mechanic_id)
    return {"offers": routing.offers_for(mechanic_id, now) if taking else [], "taking": taking}


def offers_message(mechanic_id):
    html = render_template("mechanic/dashboard/_offers.html", oob=True, **offers_context(mechanic_id))
    return Message(channel=f"user:{mechanic_id}", event="offers", data=html, id=last_event_id())


@presenter("request.changed")
def present_request_list(request_id=None, session_id=None, **_):
    messages = [request_list_message()]
    messages.extend(offers_message(mechanic_id) for mechanic_id in routing.offered_mechanic_ids(request_id))
    session = db.session.get(ConsultSession, session_id)
    if session is not None and session.mechanic_id:
        messages.append(active_session_message(session.mechanic_id))
    return messages


@presenter("presence.changed")
def present_offers_on_presence(mechanic_id=None, **_):
    """The toggle went on or off: the mechanic's own dashboard shows or hides requests."""
    return [offers_message(mechanic_id)] if mechanic_id else []


@presenter("session.changed")
def present_active_session(session_id, **_):
    session = db.session.get(ConsultSession, session_id)
    return [active_session_message(session.mechanic_id)] if session and session.mechanic_id else []
