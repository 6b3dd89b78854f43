"""Live fragments for the customer's waiting page."""
from flask import render_template

from autodoctor.extensions import db
from autodoctor.models import ConsultSession
from autodoctor.realtime import Message, presenter


def session_status_message(session_id):
    session = db.session.get(ConsultSession, session_id)
    html = render_template("customer/sessions/_status.html", session=session)
    return Message(channel=f"session:{session_id}", event="status", data=html, id=str(session.id))


@presenter("request.changed", "session.changed")
def present_session_status(session_id, **_):
    return [session_status_message(session_id)]
