from flask import render_template

from autodoctor.extensions import db
from autodoctor.models import ConsultSession, SessionRequest, User
from autodoctor.realtime import Message, presenter


def queue_requests():
    return db.session.scalars(db.select(SessionRequest).where(SessionRequest.status == "unattended")
                              .order_by(SessionRequest.created_at)).all()


def mechanics_for_assignment():
    busy = db.select(ConsultSession.mechanic_id).where(ConsultSession.status.in_(("waiting", "live")),
                                                       ConsultSession.mechanic_id.is_not(None))
    return db.session.scalars(db.select(User).where(User.role == "mechanic", User.is_active_account,
                                                    User.id.not_in(busy)).order_by(User.full_name)).all()


def queue_message():
    html = render_template("admin/dashboard/_queue.html", requests=queue_requests(),
                           mechanics=mechanics_for_assignment(), oob=True)
    return Message(channel="admin", event="queue", data=html)


@presenter("request.changed", "session.changed")
def present_queue(**_):
    return [queue_message()]
