"""Video in the room: the browser asks for a LiveKit token when the person taps Join (and
again on every retry, since tokens are short-lived). The blueprint's before_request has
already refused anybody who is not one of the session's two participants."""
from flask import jsonify
from flask_login import current_user

from autodoctor.blueprints.room import bp
from autodoctor.extensions import db
from autodoctor.models import ConsultSession
from autodoctor.services import video
from autodoctor.services.errors import ServiceError


@bp.context_processor
def video_settings():
    """Room templates show the call only where this server has LiveKit settings."""
    return {"video_available": video.available}


@bp.post("/<int:session_id>/video/token")
def video_token_create(session_id):
    session = db.session.get(ConsultSession, session_id)
    try:
        grant = video.issue_token(session, current_user)
        response = jsonify(grant)
    except ServiceError as exc:
        response = jsonify(error=exc.message)
        response.status_code = exc.status_code
    response.headers["Cache-Control"] = "no-store"
    return response
