"""Admin console: mechanic applications. The queue (pending first, oldest first; tabs for
approved and rejected), one application with its documents reviewed inline, and approve /
reject / revoke (services.applications: guarded, audited, the mechanic e-mailed and notified).
Documents are served only here, to admins, never cached and never sniffed."""
from flask import flash, redirect, render_template, request, send_file, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, TextAreaField
from wtforms.validators import DataRequired, Length

from autodoctor.blueprints.admin import bp
from autodoctor.blueprints.admin.common import actor
from autodoctor.extensions import db
from autodoctor.integrations import storage
from autodoctor.models import MechanicProfile, User
from autodoctor.services import applications
from autodoctor.services.errors import NotFound, ServiceError

TABS = (("pending", "Pending"), ("approved", "Approved"), ("rejected", "Rejected"))


class ApproveForm(FlaskForm):
    confirm = BooleanField("I checked the certificate and the insurance document",
                           validators=[DataRequired("Tick the box to confirm you checked the documents.")])


class ReasonForm(FlaskForm):
    reason = TextAreaField("Reason (the mechanic reads it)", validators=[
        DataRequired("Give the reason: the mechanic reads it."),
        Length(max=applications.REASON_MAX, message=f"Keep the reason under {applications.REASON_MAX} characters.")])


@bp.get("/applications")
def applications_index():
    status = request.args.get("status", "pending")
    if status not in applications.STATUSES:
        status = "pending"
    return render_template("admin/applications/index.html", status=status, tabs=TABS,
                           counts=applications.counts(), rows=applications.list_applications(status))


def _application(user_id):
    return db.session.execute(db.select(User, MechanicProfile).join(MechanicProfile, MechanicProfile.user_id == User.id)
                              .where(User.id == user_id, User.role == "mechanic")).first()


def _no_application():
    flash("That person has no mechanic application.", "error")
    return redirect(url_for("admin.applications_index"), code=303)


@bp.get("/applications/<int:user_id>")
def application_show(user_id):
    return _show(user_id)


def _show(user_id, approve_form=None, reject_form=None, revoke_form=None, status=200):
    found = _application(user_id)
    if found is None:
        return _no_application()
    user, profile = found
    reviewer = db.session.get(User, profile.reviewed_by_id) if profile.reviewed_by_id else None
    return render_template("admin/applications/show.html", user=user, profile=profile, reviewer=reviewer,
                           credentials=applications.credentials_of(user.id),
                           approve_form=approve_form or ApproveForm(), reject_form=reject_form or ReasonForm(),
                           revoke_form=revoke_form or ReasonForm()), status


def _act(user_id, form, action, done, form_name):
    if _application(user_id) is None:
        return _no_application()
    if form.validate_on_submit():
        try:
            action()
        except ServiceError as exc:
            db.session.rollback()
            if exc.field and exc.field in form:
                form[exc.field].errors = list(form[exc.field].errors) + [exc.message]
                return _show(user_id, status=exc.status_code, **{form_name: form})
            flash(exc.message, "error")
            return redirect(url_for("admin.application_show", user_id=user_id), code=303)
        db.session.commit()
        flash(done, "success")
        return redirect(url_for("admin.application_show", user_id=user_id), code=303)
    return _show(user_id, status=422, **{form_name: form})


@bp.post("/applications/<int:user_id>/approve")
def application_approve(user_id):
    form = ApproveForm()
    return _act(user_id, form, lambda: applications.approve(actor(), user_id),
                "Approved. The mechanic was e-mailed and can now take requests.", "approve_form")


@bp.post("/applications/<int:user_id>/reject")
def application_reject(user_id):
    form = ReasonForm()
    return _act(user_id, form, lambda: applications.reject(actor(), user_id, form.reason.data),
                "Rejected. The mechanic was e-mailed the reason and how to re-apply.", "reject_form")


@bp.post("/applications/<int:user_id>/revoke")
def application_revoke(user_id):
    form = ReasonForm()
    return _act(user_id, form, lambda: applications.revoke(actor(), user_id, form.reason.data),
                "Approval revoked. The mechanic is offline, no longer gets requests, and was e-mailed the reason.",
                "revoke_form")


@bp.get("/credentials/<int:credential_id>")
def credential_file(credential_id):
    """One application document, inline for the review page (a photo in an <img>, a PDF in the
    browser's own viewer in an <object>; Chromium 156 shows a PDF under CSP `sandbox`);
    ?download=1 saves it. Its type was proven by its bytes at upload and is never sniffed; the
    document is sandboxed, never cached, and may be framed by the console only."""
    try:
        record = applications.credential_file(credential_id)
    except NotFound as exc:
        return render_template("errors/error.html", code=404, description=exc.message), 404
    try:
        stored = storage.open(record.storage_key)
    except FileNotFoundError:
        return render_template("errors/error.html", code=404, description="That file is no longer available."), 404
    download = request.args.get("download") == "1"
    response = send_file(stored.stream, mimetype=record.mime_type, download_name=record.original_name,
                         as_attachment=download, conditional=False, etag=False, max_age=0)
    response.content_length = stored.size
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Content-Security-Policy"] = "sandbox; frame-ancestors 'self'"
    return response
