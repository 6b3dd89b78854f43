"""The session timeline (`session_events`)."""
from autodoctor.extensions import db
from autodoctor.models import SessionEvent


def record(session_id, kind, detail="", actor_id=None, request_id=None, external_id=None):
    """Add a timeline row; `external_id` (a webhook's event id) is unique, so a replay fails to insert."""
    event = SessionEvent(session_id=session_id, kind=kind, detail=detail[:500], actor_id=actor_id,
                         request_id=request_id, external_id=external_id)
    db.session.add(event)
    db.session.flush()
    return event


def for_session(session_id):
    return db.session.scalars(
        db.select(SessionEvent).where(SessionEvent.session_id == session_id).order_by(SessionEvent.id)).all()
