from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from autodoctor import htmx
from autodoctor.blueprints.mechanic import bp
from autodoctor.blueprints.mechanic.presenters import (
    active_session_message,
    offers_context,
    offers_message,
    open_requests,
    request_list_message,
)
from autodoctor.extensions import db
from autodoctor.models import ConsultSession, SessionRequest
from autodoctor.realtime import sse_response
from autodoctor.services import history, lifecycle
from autodoctor.services.errors import ServiceError


def _approved():
    profile = current_user.mechanic_profile
    return profile is not None and profile.approved


def _application_page(form=None, status=200):
    """Instead of requests, for a mechanic not approved yet: their application under review
    (what happens next, the documents sent) or, rejected, the reason and a way to re-apply."""
    from autodoctor.blueprints.auth.apply import ACCEPT, DOCUMENT_HINT
    from autodoctor.blueprints.auth.apply_forms import DocumentsForm
    from autodoctor.services import applications

    profile = current_user.mechanic_profile
    return render_template("mechanic/dashboard/application.html", profile=profile,
                           revoked=profile is not None and profile.rejection_reason is not None
                           and applications.was_revoked(current_user.id),
                           credentials=applications.credentials_of(current_user.id), form=form or DocumentsForm(),
                           accept=ACCEPT, document_hint=DOCUMENT_HINT, max_other=applications.MAX_OTHER,
                           next_appointment=None), status


@bp.get("/")
def dashboard_index():
    if not _approved():
        return _application_page()
    active = db.session.scalar(db.select(ConsultSession).where(
        ConsultSession.mechanic_id == current_user.id, ConsultSession.status.in_(("waiting", "live"))))
    recent = db.session.scalars(db.select(ConsultSession).where(
        ConsultSession.mechanic_id == current_user.id, ConsultSession.status.in_(("completed", "cancelled")))
        .order_by(ConsultSession.id.desc()).limit(20)).all()
    return render_template("mechanic/dashboard/index.html", requests=open_requests(), active=active, recent=recent,
                           next_appointment=_next_appointment(), **offers_context(current_user.id))


def _next_appointment():
    """The mechanic's next appointment (or the one going on), with its start on their clock."""
    from autodoctor import clock
    from autodoctor.models import Appointment
    from autodoctor.services import availability

    appointment = db.session.scalar(db.select(Appointment).where(
        Appointment.mechanic_id == current_user.id, Appointment.status.in_(("booked", "started")),
        Appointment.ends_at > clock.now()).order_by(Appointment.starts_at).limit(1))
    if appointment is None:
        return None
    profile = current_user.mechanic_profile
    return appointment, availability.local(appointment.starts_at, (profile.time_zone if profile else None) or "UTC")


@bp.get("/sessions")
def session_index():
    """Every session the mechanic took, newest first; HTMX page links swap only the list."""
    listing = history.list_sessions(current_user.id, "mechanic", request.args.get("page", 1, type=int))
    return htmx.render("mechanic/sessions/index.html", "shared/_session_history.html", listing=listing,
                       viewer="mechanic")


@bp.get("/stream")
def dashboard_stream():
    """New and vanished requests as they happen. On every (re)connect — with or without
    Last-Event-ID — the current list is sent first, read from the database. The stream is
    also the mechanic's presence heartbeat (services/presence.py): seen on connect and at
    every keepalive; once the dashboard is closed the beats stop and the sweep turns them offline."""
    from autodoctor.blueprints.mechanic.presence import toggle_message
    from autodoctor.services import presence

    user_id = current_user.id
    if not _approved():  # no requests and no offers before approval: only the mechanic's own channel
        return sse_response([f"user:{user_id}"], lambda: [])

    def snapshot():
        presence.seen(user_id)  # subscribed by now: going online reaches this stream live
        db.session.commit()
        messages = [request_list_message(), active_session_message(user_id), offers_message(user_id)]
        if request.headers.get("Last-Event-ID"):  # a reconnect: the switch may have changed meanwhile
            messages.append(toggle_message(user_id))
        return messages

    def beat():
        presence.seen(user_id)
        db.session.commit()

    return sse_response(["mechanics", f"user:{user_id}"], snapshot, on_keepalive=beat,
                        keepalive=presence.heartbeat_seconds())


@bp.post("/requests/<int:request_id>/accept")
def request_accept(request_id):
    try:
        session = lifecycle.accept_request(request_id, current_user.id)
    except ServiceError as exc:
        db.session.rollback()
        request = db.session.get(SessionRequest, request_id)
        return htmx.render("mechanic/dashboard/_taken.html", "mechanic/dashboard/_taken.html",
                           status=exc.status_code, request=request, message=exc.message)
    db.session.commit()
    return htmx.redirect(url_for("room.room_show", session_id=session.id))


@bp.post("/application")
def application_update():
    """New documents for an application that was not approved: back in the admins' queue."""
    from autodoctor.blueprints.auth.apply import add_errors, uploaded, uploaded_many
    from autodoctor.blueprints.auth.apply_forms import DocumentsForm
    from autodoctor.services import applications

    if _approved():
        flash("Your application is approved already: turn on Taking requests to get requests.", "info")
        return redirect(url_for("mechanic.dashboard_index"), code=303)
    form = DocumentsForm()
    if form.validate_on_submit():
        try:
            docs = applications.check_documents(uploaded(form.certificate), uploaded(form.insurance),
                                                uploaded_many(form.others), require=False)
            applications.reapply(current_user.id, docs)
        except applications.ApplicationErrors as exc:
            db.session.rollback()  # also removes any bytes already stored
            add_errors(form, exc.errors)
        except ServiceError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return redirect(url_for("mechanic.dashboard_index"), code=303)
        else:
            db.session.commit()
            flash("Thanks! Your new documents are in: your application is back in the review queue.", "success")
            return redirect(url_for("mechanic.dashboard_index"), code=303)
    return _application_page(form, 422)
