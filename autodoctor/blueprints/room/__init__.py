from flask import Blueprint, abort, request
from flask_login import current_user

from autodoctor.extensions import login_manager
from autodoctor.security import session_for_participant

bp = Blueprint("room", __name__, url_prefix="/room")
ADMIN_CAN_VIEW = {"room.summary_show", "room.file_show", "room.thumbnail_show",
                  "room.report_show", "room.report_pdf"}


@bp.before_request
def participants_only():
    """Every room route (page, websocket, forms, files) is for the session's two people."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    session_id = (request.view_args or {}).get("session_id")
    if session_id is None:
        abort(404)
    session_for_participant(session_id, allow_admin=request.endpoint in ADMIN_CAN_VIEW)


from autodoctor.blueprints.room import extension, files, presenters, report, routes, video  # noqa: E402,F401
