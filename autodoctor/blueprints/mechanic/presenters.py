"""Live fragments for mechanics' dashboards: the open-request list is rendered once per
change and sent whole to every dashboard (a snapshot, so a missed or repeated message
can never leave a stale or doubled card)."""
from flask import render_template

from autodoctor.extensions import db
from autodoctor.models import ConsultSession, Intake, SessionEvent, SessionRequest
from autodoctor.models.requests import OPEN_REQUEST_STATUSES
from autodoctor.realtime import Message, presenter

CHANNEL = "mechanics"


def open_requests():
    # Everything a card shows is loaded here: the list is rendered on every change and every
    # (re)connect, so a lazy load per card would cost two queries per open request each time.
    intake = db.joinedload(SessionRequest.session).joinedload(ConsultSession.intake)
    return db.session.scalars(
        db.select(SessionRequest).join(ConsultSession)
        .where(SessionRequest.status.in_(OPEN_REQUEST_STATUSES))
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


@presenter("request.changed")
def present_request_list(request_id=None, session_id=None, **_):
    messages = [request_list_message()]
    session = db.session.get(ConsultSession, session_id)
    if session is not None and session.mechanic_id:
        messages.append(active_session_message(session.mechanic_id))
    return messages


@presenter("session.changed")
def present_active_session(session_id, **_):
    session = db.session.get(ConsultSession, session_id)
    return [active_session_message(session.mechanic_id)] if session and session.mechanic_id else []
