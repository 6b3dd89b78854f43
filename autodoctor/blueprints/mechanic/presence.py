"""The "Taking requests" switch at the top of the mechanic's dashboard: HTMX swaps the
fragment, a plain form post goes back to the dashboard. The fragment also follows presence
changes live (the dashboard stream's `presence` event, channel user:<id>): the stream going
quiet, a session starting or ending, the switch flipped in another tab."""
from dataclasses import dataclass

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from autodoctor import htmx
from autodoctor.blueprints.mechanic import bp
from autodoctor.extensions import db
from autodoctor.models import MechanicProfile
from autodoctor.realtime import Message, presenter
from autodoctor.services import presence
from autodoctor.services.errors import ServiceError, ValidationError

FRAGMENT = "mechanic/dashboard/_presence.html"
TEXT = {
    "busy": "Busy — in a session",
    "online": "Online — you get new requests",
    "offline": "Offline — turn on to get requests",
    "connecting": "Offline — keep this dashboard open to get requests",
}


@dataclass(frozen=True)
class Toggle:
    on: bool  # the switch
    status: str  # online / busy / offline, what customers see
    text: str


def toggle_for(mechanic_id):
    on = bool(db.session.scalar(db.select(MechanicProfile.online).where(MechanicProfile.user_id == mechanic_id)))
    status = presence.status(mechanic_id)
    reason = "connecting" if status == "offline" and on else status
    return Toggle(on=on, status=status, text=TEXT[reason])


@bp.context_processor
def presence_toggle():
    """`presence_toggle()` for the dashboard's include (queried only when rendered)."""
    return {"presence_toggle": lambda: toggle_for(current_user.id)}


def toggle_message(mechanic_id):
    html = render_template(FRAGMENT, toggle=toggle_for(mechanic_id), oob=True)
    return Message(channel=f"user:{mechanic_id}", event="presence", data=html)


@presenter("presence.changed")
def present_toggle(mechanic_id, **_):
    return [toggle_message(mechanic_id)]


@presenter("request.changed", "session.changed")
def present_toggle_busy(session_id=None, **_):
    mechanic_id = presence.session_mechanic_id(session_id)
    return [toggle_message(mechanic_id)] if mechanic_id else []


@bp.post("/presence")
def presence_update():
    """online=1 / online=0 (what the switch should become, so a stale second tab cannot flip
    it the wrong way)."""
    choice = request.form.get("online", "")
    try:
        if choice not in ("0", "1"):
            raise ValidationError("Choose on or off for “Taking requests”.")
        presence.set_online(current_user.id, choice == "1")
    except ServiceError as exc:
        db.session.rollback()
        if not htmx.is_htmx():
            flash(exc.message, "error")
            return redirect(url_for("mechanic.dashboard_index"), code=303)
        return render_template(FRAGMENT, toggle=toggle_for(current_user.id), problem=exc.message), exc.status_code
    db.session.commit()
    if not htmx.is_htmx():
        return redirect(url_for("mechanic.dashboard_index"), code=303)
    return render_template(FRAGMENT, toggle=toggle_for(current_user.id))
