"""Video calls for plans with video: one LiveKit room per session, tokens only for its two
participants while the session is open, and LiveKit's participant events on the timeline."""
import re

from autodoctor.extensions import db
from autodoctor.integrations import livekit
from autodoctor.models import ConsultSession, SessionEvent, User
from autodoctor.services import timeline
from autodoctor.services.errors import Conflict, Forbidden

ROOM_NAME = re.compile(r"^session-(\d+)$")
OPEN_STATUSES = ("waiting", "live")
CLOSED_MESSAGES = {
    "scheduled": "The video call opens when your appointment starts.",
    "pending": "The video call opens once a mechanic has accepted the request.",
    "completed": "This session has ended, so its video call is closed.",
    "cancelled": "This session was cancelled, so its video call is closed.",
}
TIMELINE_KINDS = {"participant_joined": ("video_joined", "joined the video call"),
                  "participant_left": ("video_left", "left the video call")}


def available():
    """True when this server has LiveKit settings (otherwise the room runs on chat alone)."""
    return livekit.configured()


def room_name(session):
    return f"session-{session.id}"


def session_id_for_room(name):
    match = ROOM_NAME.match(name or "")
    return int(match.group(1)) if match else None


def issue_token(session, user):
    """A short-lived token for `user` to join this session's room, and nothing else."""
    if not session.is_participant(user):
        raise Forbidden("Only the customer and the mechanic of this session can join its video call.")
    if not session.plan.has_video:
        raise Conflict(f"{session.plan.name} is a chat session: it has no video call.")
    if session.status not in OPEN_STATUSES:
        raise Conflict(CLOSED_MESSAGES.get(session.status, "This session's video call is not open."))
    if not livekit.configured():
        raise Conflict("Video is not configured on this server. Chat still works.")
    identity = str(user.id)
    return {"url": livekit.server_url(), "identity": identity,
            "token": livekit.access_token(identity, user.full_name, room_name(session))}


def record_webhook(event):
    """Put a participant joining or leaving a session's call on its timeline, once per
    LiveKit event id. Returns what happened: recorded, duplicate or ignored."""
    kind = TIMELINE_KINDS.get(event.get("event"))
    session_id = session_id_for_room((event.get("room") or {}).get("name"))
    event_id = event.get("id")
    if kind is None or session_id is None or not event_id:
        return "ignored"
    session = db.session.get(ConsultSession, session_id)
    if session is None:
        return "ignored"
    external_id = f"livekit:{event_id}"[:100]
    if db.session.scalar(db.select(SessionEvent.id).where(SessionEvent.external_id == external_id)):
        return "duplicate"
    participant = event.get("participant") or {}
    user = _participant_user(session, participant.get("identity"))
    who = ("Customer" if user.id == session.customer_id else "Mechanic") if user else \
        (participant.get("name") or participant.get("identity") or "Someone")
    timeline.record(session_id, kind[0], f"{who} {kind[1]}", actor_id=user.id if user else None,
                    external_id=external_id)
    return "recorded"


def _participant_user(session, identity):
    if not (identity or "").isdigit():
        return None
    user = db.session.get(User, int(identity))
    return user if user is not None and session.is_participant(user) else None
