"""Admin console: one session — everything that happened in it, the interventions (force end,
cancel, reassign, refund) and a read-only live view of its room."""
import re
from decimal import Decimal, InvalidOperation

from flask import flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from autodoctor.blueprints.admin import bp
from autodoctor.blueprints.admin.common import actor
from autodoctor.extensions import db
from autodoctor.realtime import ROOM_REMOVED, Message, presenter, sse_response
from autodoctor.services import admin_sessions, chat, lifecycle
from autodoctor.services.errors import NotFound, ServiceError

REASON = [DataRequired("Give a reason."), Length(max=500, message="Keep the reason under 500 characters.")]


class ReasonForm(FlaskForm):
    reason = TextAreaField("Reason (the customer and mechanic see it)", validators=REASON)


class ReassignForm(FlaskForm):
    mechanic_id = SelectField("New mechanic", coerce=int, validate_choice=False,
                              validators=[DataRequired("Choose a mechanic.")])
    reason = TextAreaField("Reason", validators=REASON)


class RefundForm(FlaskForm):
    scope = RadioField("Refund", choices=[("partial", "Part of it"), ("full", "Everything left")],
                       default="partial", validators=[DataRequired("Choose how much to refund.")])
    amount = StringField("Amount (USD)", validators=[Optional()])
    reason = TextAreaField("Reason", validators=REASON)


def parse_cents(raw):
    """ "5", "5.5", "$5.00", "1,250.00" -> cents; None when it is not an amount of dollars and cents."""
    text = (raw or "").strip().lstrip("$").replace(",", "").strip()
    if not re.fullmatch(r"\d{1,7}(\.\d{1,2})?", text):
        return None
    try:
        return int(Decimal(text) * 100)
    except InvalidOperation:
        return None


def _forms(**given):
    forms = {"end_form": ReasonForm(prefix="end", formdata=None), "cancel_form": ReasonForm(prefix="cancel", formdata=None),
             "reassign_form": ReassignForm(prefix="reassign", formdata=None),
             "refund_form": RefundForm(prefix="refund", formdata=None)}
    forms.update(given)
    return forms


def _page(session_id, status=200, **forms):
    try:
        info = admin_sessions.detail(session_id)
    except NotFound:
        return render_template("errors/error.html", code=404, description="That session does not exist."), 404
    forms = _forms(**forms)
    session = info.session
    mechanics = admin_sessions.eligible_mechanics(exclude_id=session.mechanic_id) if session.status == "waiting" else []
    forms["reassign_form"].mechanic_id.choices = [(0, "Choose a mechanic…")] + [
        (m.id, f"{m.full_name} ({m.email})") for m in mechanics]
    return render_template("admin/sessions/show.html", info=info, s=session, mechanics=mechanics, **forms), status


@bp.get("/sessions/<int:session_id>")
def session_show(session_id):
    return _page(session_id)


def _done(session_id, message):
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("admin.session_show", session_id=session_id), code=303)


def _refused(session_id, exc, form_name, form):
    db.session.rollback()
    if exc.status_code == 404:
        return _page(session_id)
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None:
        field.errors = list(field.errors or []) + [exc.message]
        return _page(session_id, 422, **{form_name: form})
    flash(exc.message, "error")
    return redirect(url_for("admin.session_show", session_id=session_id), code=303)


@bp.post("/sessions/<int:session_id>/end")
def session_force_end(session_id):
    form = ReasonForm(prefix="end")
    if not form.validate_on_submit():
        return _page(session_id, 422, end_form=form)
    try:
        session = admin_sessions.force_end(session_id, actor(), form.reason.data)
    except ServiceError as exc:
        return _refused(session_id, exc, "end_form", form)
    if session.status == "cancelled":
        return _done(session_id, f"Session #{session_id} ended before it started; the customer was refunded in full.")
    return _done(session_id, f"Session #{session_id} ended; it was settled like a normal end.")


@bp.post("/sessions/<int:session_id>/cancel")
def session_cancel(session_id):
    form = ReasonForm(prefix="cancel")
    if not form.validate_on_submit():
        return _page(session_id, 422, cancel_form=form)
    try:
        admin_sessions.cancel(session_id, actor(), form.reason.data)
    except ServiceError as exc:
        return _refused(session_id, exc, "cancel_form", form)
    return _done(session_id, f"Session #{session_id} cancelled; the customer was refunded in full.")


@bp.post("/sessions/<int:session_id>/reassign")
def session_reassign(session_id):
    form = ReassignForm(prefix="reassign")
    if not form.validate_on_submit():
        return _page(session_id, 422, reassign_form=form)
    try:
        session = admin_sessions.reassign(session_id, form.mechanic_id.data, actor(), form.reason.data)
    except ServiceError as exc:
        return _refused(session_id, exc, "reassign_form", form)
    return _done(session_id, f"Session #{session_id} reassigned to {session.mechanic.full_name}.")


@bp.post("/sessions/<int:session_id>/refund")
def session_refund(session_id):
    form = RefundForm(prefix="refund")
    valid = form.validate_on_submit()
    cents = None
    if valid and form.scope.data == "full":
        session = db.session.get(admin_sessions.ConsultSession, session_id)
        cents = admin_sessions.refundable(session) if session else 0
        if not cents:
            form.scope.errors = ["Nothing is left to refund for this session."]
            valid = False
    elif valid:
        cents = parse_cents(form.amount.data)
        if cents is None:
            form.amount.errors = ["Enter an amount in dollars and cents, e.g. 5.00."]
            valid = False
    if not valid:
        return _page(session_id, 422, refund_form=form)
    try:
        amount, to_card, to_credit = admin_sessions.refund(session_id, cents, actor(), form.reason.data)
    except ServiceError as exc:
        return _refused(session_id, exc, "refund_form", form)
    where = " and ".join(part for part in (to_card and f"${to_card / 100:,.2f} to the card",
                                           to_credit and f"${to_credit / 100:,.2f} as account credit") if part)
    return _done(session_id, f"Refunded ${amount / 100:,.2f} ({where}).")


# --- observe ------------------------------------------------------------------------------

def transcript_message(session_id):
    """The whole transcript, replacing the page's (a reconnect never doubles a line)."""
    html = render_template("admin/sessions/_transcript.html", messages=chat.messages_after(session_id), oob=True)
    return Message(channel=f"room:{session_id}", event="chat", data=html)


@bp.get("/sessions/<int:session_id>/observe")
def session_observe(session_id):
    session = db.session.get(admin_sessions.ConsultSession, session_id)
    if session is None:
        return render_template("errors/error.html", code=404, description="That session does not exist."), 404
    return render_template("admin/sessions/observe.html", s=session, messages=chat.messages_after(session_id),
                           present=lifecycle.present_user_ids(session_id))


def observe_channel(session_id):
    return f"admin-observe:{session_id}"


def observe_status_message(session_id):
    """The observer's own status line (the room's carries a redirect for the participants)."""
    session = db.session.get(admin_sessions.ConsultSession, session_id)
    html = render_template("admin/sessions/_observe_status.html", s=session,
                           present=lifecycle.present_user_ids(session_id), oob=True)
    return Message(channel=observe_channel(session_id), event="observe", data=html)


@bp.get("/sessions/<int:session_id>/observe/stream")
def session_observe_stream(session_id):
    """The room as it happens, read-only: the room's own channel for its chat lines (rendered
    once for both participants, and so for the observer too) and a status channel of its own.
    The observer joins no presence and sends no typing or "seen" marks, so the participants
    never see them. On (re)connect: the status and the whole transcript."""
    if db.session.get(admin_sessions.ConsultSession, session_id) is None:
        return render_template("errors/error.html", code=404, description="That session does not exist."), 404
    return sse_response([f"room:{session_id}", observe_channel(session_id)],
                        lambda: [observe_status_message(session_id), transcript_message(session_id)])


@presenter("session.changed", "session.warning", "request.changed", "room.presence")
def present_observe_status(session_id=None, **_):
    return [observe_status_message(session_id)] if session_id else []


@presenter("session.reassigned")
def present_reassigned(session_id, old_mechanic_id, **_):
    """The mechanic a session was taken from: their dashboard drops it and shows them free."""
    from autodoctor.blueprints.mechanic.presence import toggle_message
    from autodoctor.blueprints.mechanic.presenters import active_session_message

    return [active_session_message(old_mechanic_id), toggle_message(old_mechanic_id),
            Message(channel=f"room:{session_id}", event=ROOM_REMOVED, data=str(old_mechanic_id))]
