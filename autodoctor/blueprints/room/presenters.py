"""Fragments pushed into the room over its websocket; each has a stable id."""
from flask import render_template

from autodoctor.extensions import db
from autodoctor.models import ChatMessage, ConsultSession
from autodoctor.realtime import Message, presenter
from autodoctor.services import lifecycle


def chat_message(message):
    html = render_template("room/_message_oob.html", message=message)
    return Message(channel=f"room:{message.session_id}", event="chat", data=html, id=f"msg-{message.id}")


def room_status(session_id):
    session = db.session.get(ConsultSession, session_id)
    html = render_template("room/_status.html", session=session, present=lifecycle.present_user_ids(session_id),
                           oob=True)
    return Message(channel=f"room:{session_id}", event="status", data=html)


def seen_mark(session_id, reader_id, message_id):
    """Where the reader has read up to; their own screen does not need it."""
    html = render_template("room/_seen.html", reader_id=reader_id, message_id=message_id, oob=True)
    return Message(channel=f"room:{session_id}", event="seen", data=html, skip_user=reader_id)


def typing(session_id, user_id, name):
    html = render_template("room/_typing.html", user_id=user_id, name=name)
    return Message(channel=f"room:{session_id}", event="typing", data=html, skip_user=user_id)


@presenter("chat.message")
def present_chat_message(session_id, message_id):
    return [chat_message(db.session.get(ChatMessage, message_id))]


@presenter("chat.seen")
def present_seen(session_id, reader_id, message_id):
    return [seen_mark(session_id, reader_id, message_id)]


@presenter("session.changed", "session.warning", "room.presence", "request.changed")
def present_room_status(session_id, **_):
    return [room_status(session_id)]
