from flask import flash, redirect, render_template, url_for
from flask_login import current_user

from autodoctor.blueprints.admin import bp
from autodoctor.blueprints.admin.forms import AssignForm
from autodoctor.blueprints.admin.presenters import mechanics_for_assignment, queue_message, queue_requests
from autodoctor.extensions import db
from autodoctor.models import ConsultSession
from autodoctor.realtime import sse_response
from autodoctor.services import lifecycle
from autodoctor.services.errors import ServiceError


@bp.get("/")
def dashboard_index():
    recent = db.session.scalars(db.select(ConsultSession).order_by(ConsultSession.id.desc()).limit(25)).all()
    return render_template("admin/dashboard/index.html", requests=queue_requests(),
                           mechanics=mechanics_for_assignment(), recent=recent)


@bp.get("/stream")
def dashboard_stream():
    return sse_response(["admin"], lambda: [queue_message()])


@bp.post("/requests/<int:request_id>/assign")
def request_assign(request_id):
    form = AssignForm()
    form.mechanic_id.choices = [(m.id, m.full_name) for m in mechanics_for_assignment()]
    if form.validate_on_submit():
        try:
            session = lifecycle.accept_request(request_id, form.mechanic_id.data, assigned_by=current_user.id)
        except ServiceError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(f"Session #{session.id} assigned to {session.mechanic.full_name}.", "success")
    else:
        flash("Choose a mechanic who is free right now.", "error")
    return redirect(url_for("admin.dashboard_index"), code=303)
