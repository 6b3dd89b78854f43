"""Chat lines: committed before they are broadcast, replayed from the database."""
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from autodoctor.extensions import db
from autodoctor.models import ChatMessage, ConsultSession, SessionParticipant
from autodoctor.realtime import emit
from autodoctor.services import uploads
from autodoctor.services.errors import Conflict, Forbidden, ValidationError

MAX_LENGTH = 2000
REPLAY_OVERLAP = 20  # ids are assigned at insert, not commit: resend a few before `after`


def post_message(session_id, sender_id, body, client_token=None):
    """Store one line of chat; the caller commits, then it is broadcast to the room."""
    _open_session(session_id, sender_id)
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


def post_file(session_id, sender_id, name, source, caption=None):
    """Share a file as a chat line (checked against the plan, stored, optional caption); the
    caller commits, then it is broadcast to the room like any line."""
    session = _open_session(session_id, sender_id)
    caption = (caption or "").strip()
    if len(caption) > MAX_LENGTH:
        raise ValidationError(f"Captions are limited to {MAX_LENGTH} characters.")
    record = uploads.store(uploads.check_room_upload(session, name, source), sender_id, session_id=session_id)
    db.session.flush()
    uploads.hold_room_cap(session)
    message = ChatMessage(session_id=session_id, sender_id=sender_id, body=caption, file_id=record.id)
    db.session.add(message)
    db.session.flush()
    emit("chat.message", session_id=session_id, message_id=message.id)
    return message


def _open_session(session_id, sender_id):
    session = db.session.get(ConsultSession, session_id)
    if session is None or sender_id not in (session.customer_id, session.mechanic_id):
        raise Forbidden("You are not part of this session.")
    if session.status not in ("waiting", "live"):
        raise Conflict("This session has ended; the chat is closed.")
    return session


def messages_after(session_id, after_id=0, overlap=REPLAY_OVERLAP):
    """Lines a reconnecting client may have missed, with an overlap it de-duplicates."""
    query = db.select(ChatMessage).where(ChatMessage.session_id == session_id).order_by(ChatMessage.id)
    if after_id:
        floor = db.session.scalar(
            db.select(ChatMessage.id).where(ChatMessage.session_id == session_id, ChatMessage.id <= after_id)
            .order_by(ChatMessage.id.desc()).offset(overlap).limit(1)) or 0
        query = query.where(ChatMessage.id > floor)
    return db.session.scalars(query).all()


def mark_seen(session_id, reader_id, message_id):
    """The reader has seen the other person's lines up to `message_id`. Only moves forward;
    returns True when it moved (the other person's screen then shows "Seen")."""
    if not isinstance(message_id, int) or isinstance(message_id, bool) or message_id <= 0:
        return False
    exists = db.session.scalar(db.select(ChatMessage.id).where(
        ChatMessage.id == message_id, ChatMessage.session_id == session_id, ChatMessage.sender_id != reader_id))
    if not exists:
        return False
    moved = db.session.execute(
        update(SessionParticipant).where(
            SessionParticipant.session_id == session_id, SessionParticipant.user_id == reader_id,
            SessionParticipant.last_seen_message_id.is_(None) | (SessionParticipant.last_seen_message_id < message_id))
        .values(last_seen_message_id=message_id), execution_options={"synchronize_session": False}).rowcount
    if moved:
        emit("chat.seen", session_id=session_id, reader_id=reader_id, message_id=message_id)
    return bool(moved)


def seen_marks(session_id):
    """{reader id: last line id they have seen} for the room's participants."""
    return dict(db.session.execute(db.select(SessionParticipant.user_id, SessionParticipant.last_seen_message_id)
                                   .where(SessionParticipant.session_id == session_id,
                                          SessionParticipant.last_seen_message_id.is_not(None))).all())
