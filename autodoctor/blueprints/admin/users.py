"""Admin console: one person's page (customers, mechanics and admins) and the actions on their
account: suspend, ban, reactivate, verify the e-mail, send a password reset, notes, a free session."""
from flask import abort, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length

from autodoctor.blueprints.admin import bp
from autodoctor.blueprints.admin.common import actor
from autodoctor.extensions import db
from autodoctor.realtime import ACCOUNT_CLOSED, Message, account_channel, presenter
from autodoctor.services import admin_users
from autodoctor.services.errors import NotFound, ServiceError, ValidationError


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class StatusForm(FlaskForm):
    reason = TextAreaField("Reason", filters=[_strip], validators=[
        DataRequired("Give a reason."), Length(max=admin_users.REASON_MAX)])


class ConfirmForm(FlaskForm):
    confirm = HiddenField(validators=[DataRequired("Confirm the action."), AnyOf(["yes"], "Confirm the action.")])


class NoteForm(FlaskForm):
    body = TextAreaField("Note", filters=[_strip], validators=[
        DataRequired("Write the note."), Length(max=admin_users.NOTE_MAX)])


class FreeSessionForm(FlaskForm):
    plan_code = SelectField("Plan", validators=[DataRequired("Choose a plan.")])
    reason = TextAreaField("Reason", filters=[_strip], validators=[
        DataRequired("Give a reason."), Length(max=admin_users.REASON_MAX)])


# Each action: (form name, form class). One form per action so only its fields show errors.
FORMS = {
    "suspend": StatusForm, "ban": StatusForm, "reactivate": StatusForm,
    "verify_email": ConfirmForm, "password_reset": ConfirmForm, "note": NoteForm, "free_session": FreeSessionForm,
}


def _forms(**given):
    forms = {name: given.get(name) or cls(prefix=name) for name, cls in FORMS.items()}
    forms["free_session"].plan_code.choices = [
        ("", "Choose a plan")] + [(p.code, f"{p.name} ({admin_users.dollars(p.price_cents)})")
                                  for p in admin_users.free_session_plans()]
    return forms


def _page(user_id, status=200, **given):
    try:
        view = admin_users.overview(user_id)
    except NotFound:
        abort(404)
    return render_template("admin/users/show.html", view=view, user=view.user, forms=_forms(**given)), status


@bp.get("/users/<int:user_id>")
def user_show(user_id):
    return _page(user_id)


def _act(user_id, name, run):
    """Validate the action's form, run it, commit: 303 back with a flash; bad input 422 with the
    page and the form's errors; a refused action 303 back with the reason."""
    form = _forms()[name]
    if not form.validate_on_submit():
        db.session.rollback()
        return _page(user_id, 422, **{name: form})
    try:
        message = run(form)
    except NotFound:
        db.session.rollback()
        abort(404)
    except ValidationError as exc:
        db.session.rollback()
        field = getattr(form, exc.field or "", None)
        if field is not None:
            field.errors.append(exc.message)
        else:
            flash(exc.message, "error")
        return _page(user_id, 422, **{name: form})
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("admin.user_show", user_id=user_id), code=303)
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("admin.user_show", user_id=user_id), code=303)


@bp.post("/users/<int:user_id>/suspend")
def user_suspend(user_id):
    def run(form):
        user = admin_users.suspend(user_id, actor(), form.reason.data)
        return f"{user.full_name} is suspended and logged out everywhere."
    return _act(user_id, "suspend", run)


@bp.post("/users/<int:user_id>/ban")
def user_ban(user_id):
    def run(form):
        user = admin_users.ban(user_id, actor(), form.reason.data)
        return f"{user.full_name} is banned and logged out everywhere."
    return _act(user_id, "ban", run)


@bp.post("/users/<int:user_id>/reactivate")
def user_reactivate(user_id):
    def run(form):
        user = admin_users.reactivate(user_id, actor(), form.reason.data)
        return f"{user.full_name} is active again and can log in."
    return _act(user_id, "reactivate", run)


@bp.post("/users/<int:user_id>/verify-email")
def user_verify_email(user_id):
    def run(form):
        if admin_users.verify_email(user_id, actor()):
            return "The e-mail address is now verified."
        return "The e-mail address was already verified."
    return _act(user_id, "verify_email", run)


@bp.post("/users/<int:user_id>/password-reset")
def user_password_reset(user_id):
    def run(form):
        email = admin_users.send_password_reset(user_id, actor())
        return f"A password reset link is on its way to {email.to_address} (valid for one hour)."
    return _act(user_id, "password_reset", run)


@bp.post("/users/<int:user_id>/notes")
def user_note_create(user_id):
    def run(form):
        admin_users.add_note(user_id, actor(), form.body.data)
        return "Note added."
    return _act(user_id, "note", run)


@bp.post("/users/<int:user_id>/free-session")
def user_free_session(user_id):
    def run(form):
        cents = admin_users.grant_free_session(user_id, actor(), form.plan_code.data, form.reason.data)
        return f"Granted {admin_users.dollars(cents)} of account credit; the customer was notified."
    return _act(user_id, "free_session", run)


@presenter(ACCOUNT_CLOSED)
def account_closed_message(user_id):
    """Ends the person's open streams (realtime.stream stops at this event)."""
    return [Message(channel=account_channel(user_id), event=ACCOUNT_CLOSED, data="")]
