"""Chat lines: committed before they are broadcast, replayed from the database."""
from sqlalchemy.exc import IntegrityError

from autodoctor.extensions import db
from autodoctor.models import ChatMessage, ConsultSession
from autodoctor.realtime import emit
from autodoctor.services.errors import Conflict, Forbidden, ValidationError

MAX_LENGTH = 2000
REPLAY_OVERLAP = 20  # ids are assigned at insert, not commit: resend a few before `after`


def post_message(session_id, sender_id, body, client_token=None):
    """Store one line of chat; the caller commits, then it is broadcast to the room."""
    session = db.session.get(ConsultSession, session_id)
    if session is None or sender_id not in (session.customer_id, session.mechanic_id):
        raise Forbidden("You are not part of this session.")
    if session.status not in ("waiting", "live"):
        raise Conflict("This session has ended; the chat is closed.")
    body = (body or "").strip()
    if not body:
        raise ValidationError("Type a message first.")
    if len(body) > MAX_LENGTH:
        raise ValidationError(f"Messages are limited to {MAX_LENGTH} characters.")
    token = (client_token or "")[:40] or None
    if token:
        existing = db.session.scalar(db.select(ChatMessage).where(
            ChatMessage.session_id == session_id, ChatMessage.sender_id == sender_id,
            ChatMessage.client_token == token))
        if existing:  # a resend after a dropped socket
            return existing
    message = ChatMessage(session_id=session_id, sender_id=sender_id, body=body, client_token=token)
    db.session.add(message)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("That message was already sent.") from None
    emit("chat.message", session_id=session_id, message_id=message.id)
    return message


def messages_after(session_id, after_id=0, overlap=REPLAY_OVERLAP):
    """Lines a reconnecting client may have missed, with an overlap it de-duplicates."""
    query = db.select(ChatMessage).where(ChatMessage.session_id == session_id).order_by(ChatMessage.id)
    if after_id:
        floor = db.session.scalar(
            db.select(ChatMessage.id).where(ChatMessage.session_id == session_id, ChatMessage.id <= after_id)
            .order_by(ChatMessage.id.desc()).offset(overlap).limit(1)) or 0
        query = query.where(ChatMessage.id > floor)
    return db.session.scalars(query).all()
