"""Admin console: the dashboard (today's numbers, the queue, recent sessions) and the queue of
unattended and expiring requests with its actions: assign, extend, cancel with refund."""
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for

from autodoctor.blueprints.admin import bp
from autodoctor.blueprints.admin.common import actor
from autodoctor.blueprints.admin.forms import AssignForm, CancelForm, ExtendForm
from autodoctor.blueprints.admin.presenters import CHANNEL, queue_context, queue_message
from autodoctor.extensions import db
from autodoctor.models import ConsultSession, SessionRequest
from autodoctor.realtime import sse_response
from autodoctor.services import admin_dashboard, audit, lifecycle, money
from autodoctor.services.errors import ServiceError
from autodoctor.services.plans import format_price

RECENT_SESSIONS = 25


def _page():
    """The page a queue action came from (its forms are on the dashboard and the queue page)."""
    referrer = urlsplit(request.referrer or "").path
    return "dashboard" if referrer == url_for("admin.dashboard_index") else "queue"


def _render(page, status=200, errors=None):
    context = queue_context(errors)
    if page == "dashboard":
        recent = db.session.scalars(
            db.select(ConsultSession).order_by(ConsultSession.id.desc()).limit(RECENT_SESSIONS)
            .options(db.joinedload(ConsultSession.plan), db.joinedload(ConsultSession.customer),
                     db.joinedload(ConsultSession.mechanic))).all()
        metrics = admin_dashboard.metrics()
        return render_template("admin/dashboard/index.html", metrics=metrics, recent=recent,
                               unattended_count=metrics.unattended_now, **context), status
    return render_template("admin/queue/index.html", unattended_count=admin_dashboard.unattended_count(),
                           **context), status


def _done(page):
    return redirect(url_for(f"admin.{page}_index"), code=303)


def _invalid(page, request_id, form, action):
    fields = {name: messages[0] for name, messages in form.errors.items() if messages}
    return _render(page, 422, {request_id: {"action": action, "fields": fields}})


def _get_request(request_id):
    found = db.session.get(SessionRequest, request_id)
    if found is None:
        flash("That request does not exist.", "error")
    return found


@bp.get("/")
def dashboard_index():
    return _render("dashboard")


@bp.get("/queue")
def queue_index():
    return _render("queue")


@bp.get("/stream")
def dashboard_stream():
    return sse_response([CHANNEL], lambda: [queue_message()])


@bp.post("/requests/<int:request_id>/assign")
def request_assign(request_id):
    page = _page()
    form = AssignForm()
    if not form.validate_on_submit():
        return _invalid(page, request_id, form, "assign")
    found = _get_request(request_id)
    if found is None:
        return _done(page)
    before = audit.snapshot(found, "status", "mechanic_id")
    try:
        session = lifecycle.accept_request(request_id, form.mechanic_id.data, assigned_by=actor().id)
    except ServiceError as exc:
        db.session.rollback()
        message = exc.message
        if message == lifecycle.BUSY_MESSAGE:  # worded for the mechanic themself
            message = "That mechanic is busy in another session right now. Choose someone who is free."
        flash(message, "error")
        return _done(page)
    mechanic = session.mechanic
    audit.record(actor(), "request.assign", "request", request_id,
                 f"Assigned request #{request_id} (session #{session.id}) to {mechanic.full_name}",
                 before=before, after={"status": "accepted", "mechanic_id": mechanic.id})
    db.session.commit()
    flash(f"Session #{session.id} assigned to {mechanic.full_name}.", "success")
    return _done(page)


@bp.post("/requests/<int:request_id>/extend")
def request_extend(request_id):
    page = _page()
    form = ExtendForm()
    if not form.validate_on_submit():
        return _invalid(page, request_id, form, "extend")
    found = _get_request(request_id)
    if found is None:
        return _done(page)
    before = {"extended_until": audit.snapshot(found, "extended_until")["extended_until"],
              "expires_at": lifecycle.request_deadline(found)}
    try:
        extended = lifecycle.extend_request(request_id, form.minutes.data, actor().id, form.reason.data)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _done(page)
    audit.record(actor(), "request.extend", "request", request_id,
                 f"Extended request #{request_id} by {form.minutes.data} minutes",
                 before=before, after={"extended_until": extended.extended_until,
                                       "expires_at": extended.extended_until},
                 reason=form.reason.data)
    db.session.commit()
    flash(f"Request #{request_id} now expires at {extended.extended_until:%H:%M} UTC.", "success")
    return _done(page)


@bp.post("/requests/<int:request_id>/cancel")
def request_cancel(request_id):
    page = _page()
    form = CancelForm()
    if not form.validate_on_submit():
        return _invalid(page, request_id, form, "cancel")
    found = _get_request(request_id)
    if found is None:
        return _done(page)
    session_id = found.session_id
    session = db.session.get(ConsultSession, session_id)
    before = {"status": session.status, "request_status": found.status}
    held = money.escrow_balance(session_id)
    try:
        lifecycle.cancel_by_admin(session_id, actor().id, form.reason.data)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _done(page)
    session = db.session.get(ConsultSession, session_id)
    refunded = held - money.escrow_balance(session_id)
    audit.record(actor(), "session.cancel", "session", session_id,
                 f"Cancelled session #{session_id} from the queue; {refunded} cents refunded",
                 before={**before, "refunded_cents": 0},
                 after={"status": session.status, "request_status": "cancelled", "refunded_cents": refunded},
                 reason=form.reason.data)
    db.session.commit()
    flash(f"Session #{session_id} cancelled; {format_price(refunded)} back to the customer." if refunded else
          f"Session #{session_id} cancelled; it was free, so there was nothing to refund.", "success")
    return _done(page)
