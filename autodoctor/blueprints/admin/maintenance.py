"""Admin console: the cleanup with its preview, and the e-mail outbox."""
import io

from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField
from wtforms.validators import DataRequired

from autodoctor import htmx
from autodoctor.blueprints.admin import bp
from autodoctor.blueprints.admin.common import actor
from autodoctor.extensions import db
from autodoctor.integrations import mail
from autodoctor.models import DiagnosticReport, OutboxEmail
from autodoctor.services import maintenance, sweep
from autodoctor.services.errors import ServiceError

OUTBOX_PAGE = 50
OUTBOX_STATES = (("", "Any state"), ("sent", "Sent"), ("waiting", "Waiting"), ("failed", "Failed"))


class CleanupForm(FlaskForm):
    token = HiddenField(validators=[DataRequired("The preview is missing: reload the page and check it again.")])
    confirm = BooleanField("I checked the preview above; apply exactly these changes.",
                           validators=[DataRequired("Tick the box to confirm you checked the preview.")])


def _maintenance_page(form=None, groups=None, status=200, stale=False):
    groups = maintenance.preview() if groups is None else groups
    token = maintenance.token(groups)
    form = form or CleanupForm(formdata=None)
    form.token.data = token  # the preview on screen is the one the next apply must match
    return render_template("admin/maintenance/index.html", groups=groups, form=form, stale=stale,
                           total=sum(group.count for group in groups)), status


@bp.get("/maintenance")
def maintenance_index():
    return _maintenance_page()


@bp.post("/maintenance")
def maintenance_apply():
    form = CleanupForm()
    if not form.validate_on_submit():
        return _maintenance_page(form, status=422)
    try:
        results = maintenance.apply(form.token.data, actor())
    except maintenance.StalePreview as exc:
        db.session.rollback()
        return _maintenance_page(CleanupForm(formdata=None), exc.groups, status=409, stale=True)
    except ServiceError as exc:
        db.session.rollback()
        form.confirm.errors.append(exc.message)
        return _maintenance_page(form, status=exc.status_code)
    db.session.commit()
    done = {key: len(result["done"]) for key, result in results.items()}
    unchanged = sum(len(result["unchanged"]) for result in results.values())
    failed = sum(len(result["failed"]) for result in results.values())
    labels = {step.key: step.label for step in sweep.CLEANUP_STEPS}
    summary = "; ".join(f"{labels[key]}: {count}" for key, count in done.items() if count)
    flash(f"Cleanup applied — {sum(done.values())} changed" + (f" ({summary})" if summary else "") +
          (f"; {unchanged} had already moved on" if unchanged else "") + ".", "success")
    if failed:
        which = "; ".join(f"{labels.get(key, key)}: {', '.join(f'#{i}' for i in result['failed'])}"
                          for key, result in results.items() if result["failed"])
        flash(f"{failed} could not be changed and were left as they were ({which}). The error is in the log; "
              "the sweep will retry them.", "error")
    return redirect(url_for("admin.maintenance_index"), code=303)


# The outbox ---------------------------------------------------------------------------------------


def _state_filter(state):
    if state == "sent":
        return OutboxEmail.sent_at.is_not(None)
    if state == "failed":
        return OutboxEmail.sent_at.is_(None) & OutboxEmail.error.is_not(None)
    if state == "waiting":
        return OutboxEmail.sent_at.is_(None) & OutboxEmail.error.is_(None)
    return None


def _outbox_page():
    """One keyset page, newest first: `before` (older than that id) or `after` (newer)."""
    q = (request.args.get("q") or "").strip()[:200]
    state = request.args.get("state") or ""
    state = state if state in dict(OUTBOX_STATES) else ""
    before = request.args.get("before", type=int)
    after = request.args.get("after", type=int)
    columns = (OutboxEmail.id, OutboxEmail.to_address, OutboxEmail.subject, OutboxEmail.created_at,
               OutboxEmail.sent_at, OutboxEmail.error, OutboxEmail.attachment_name, OutboxEmail.report_id)
    query = db.select(*columns)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(OutboxEmail.to_address.ilike(pattern, escape="\\") |
                            OutboxEmail.subject.ilike(pattern, escape="\\"))
    if (condition := _state_filter(state)) is not None:
        query = query.where(condition)
    if after is not None and before is None:
        rows = db.session.execute(query.where(OutboxEmail.id > after).order_by(OutboxEmail.id)
                                  .limit(OUTBOX_PAGE + 1)).all()
        has_newer, rows = len(rows) > OUTBOX_PAGE, rows[:OUTBOX_PAGE][::-1]
        has_older = bool(rows)
    else:
        if before is not None:
            query = query.where(OutboxEmail.id < before)
        rows = db.session.execute(query.order_by(OutboxEmail.id.desc()).limit(OUTBOX_PAGE + 1)).all()
        has_older, rows = len(rows) > OUTBOX_PAGE, rows[:OUTBOX_PAGE]
        has_newer = before is not None and bool(rows)
    filters = {key: value for key, value in (("q", q), ("state", state)) if value}
    return {"emails": rows, "q": q, "state": state, "states": OUTBOX_STATES, "filters": filters,
            "newer": url_for("admin.outbox_index", after=rows[0].id, **filters) if has_newer and rows else None,
            "older": url_for("admin.outbox_index", before=rows[-1].id, **filters) if has_older and rows else None,
            "filtered": bool(filters), "paged": before is not None or after is not None}


@bp.get("/outbox")
def outbox_index():
    return htmx.render("admin/outbox/index.html", "admin/outbox/_table.html", smtp=mail.configured(),
                       **_outbox_page())


def _email(email_id):
    email = db.session.get(OutboxEmail, email_id)
    if email is None:
        abort(404)
    return email


@bp.get("/outbox/<int:email_id>")
def outbox_show(email_id):
    email = _email(email_id)
    report = db.session.get(DiagnosticReport, email.report_id) if email.report_id else None
    return render_template("admin/outbox/show.html", email=email, report=report, smtp=mail.configured(),
                           mail_from=current_app.config.get("MAIL_FROM"))


@bp.get("/outbox/<int:email_id>/attachment")
def outbox_attachment(email_id):
    email = _email(email_id)
    if email.attachment_body is None:
        flash("This e-mail has no attachment of its own.", "info")
        return redirect(url_for("admin.outbox_show", email_id=email_id), code=303)
    response = send_file(io.BytesIO(email.attachment_body), as_attachment=True,
                         download_name=email.attachment_name or f"attachment-{email.id}",
                         mimetype=email.attachment_type or "application/octet-stream", max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response
