"""In-app notices (appointment reminders, say): the area at the top of every page for a
logged-in person, "Dismiss" / "Dismiss all" (HTMX swaps the area; without JavaScript a
normal POST goes back to the page), and the person's own notice stream for pages that have
no stream of their own. Any page holding a stream of `user:<id>` gets the area pushed as
the `notices` event (static/js/app-2.js swaps it in)."""
import logging
from urllib.parse import urlsplit

from flask import abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy.exc import SQLAlchemyError

from autodoctor import htmx
from autodoctor.blueprints.public import bp
from autodoctor.extensions import db
from autodoctor.realtime import Message, presenter, sse_response
from autodoctor.services import notifications
from autodoctor.services.errors import NotFound

log = logging.getLogger(__name__)
# The room keeps its page as light as it can (a phone on a weak network, video beside it).
NO_NOTICES_ON = {"room.room_show"}


@bp.app_context_processor
def notices_area():
    """`unread_notices()` for base.html: only a page that renders the area runs the query."""

    def unread_notices():
        if not current_user.is_authenticated or request.endpoint in NO_NOTICES_ON:
            return None
        try:
            return notifications.unread(current_user.id)
        except SQLAlchemyError:  # an error page must render even when the database is what failed
            log.warning("notices left out of the page", exc_info=True)
            return None

    return {"unread_notices": unread_notices}


def notices_message(user_id):
    html = render_template("shared/_notices.html", notices=notifications.unread(user_id), live=True)
    return Message(channel=f"user:{user_id}", event="notices", data=html)


@presenter("notices.changed")
def present_notices(user_id, **_):
    return [notices_message(user_id)]


@bp.get("/notifications/stream")
@login_required
def notifications_stream():
    """The person's own notices (the channel is theirs by login; no id to probe): the
    current area first on every (re)connect, then every change."""
    user_id = current_user.id
    return sse_response([f"user:{user_id}"], lambda: [notices_message(user_id)])


@bp.post("/notifications/<int:notification_id>/dismiss")
@login_required
def notification_dismiss(notification_id):
    try:
        notifications.dismiss(current_user.id, notification_id)
    except NotFound as exc:
        db.session.rollback()
        abort(404, exc.message)
    db.session.commit()
    return _area_or_back()


@bp.post("/notifications/dismiss-all")
@login_required
def notification_dismiss_all():
    notifications.dismiss_all(current_user.id)
    db.session.commit()
    return _area_or_back()


def _area_or_back():
    """HTMX: the area again, to swap in; a plain form post: back to the page it came from."""
    if htmx.is_htmx():
        return render_template("shared/_notices.html", notices=notifications.unread(current_user.id), live=True)
    target = request.form.get("next") or ""
    parts = urlsplit(target)
    local = target.startswith("/") and not target.startswith("//") and "\\" not in target and not parts.netloc
    return redirect(target if local else url_for("public.index"), code=303)
