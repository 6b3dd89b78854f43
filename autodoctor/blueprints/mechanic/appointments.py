"""The mechanic's booked appointments, as a day or a week in their own zone
(`mechanic_profile.time_zone`). A booked appointment that started 10 minutes ago or more (and
less than 24 hours ago) offers "Mark no-show"."""
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from autodoctor import clock
from autodoctor.blueprints.mechanic import bp
from autodoctor.extensions import db
from autodoctor.models import Appointment
from autodoctor.services import appointments, availability
from autodoctor.services.errors import ServiceError

NO_SHOW_WITHIN = timedelta(hours=24)


@dataclass
class Row:
    appointment: Appointment
    starts: datetime  # aware, in the mechanic's zone
    ends: datetime
    no_show_from: datetime | None  # aware; set while the start is under 24 h ago and no-show not yet allowed
    can_mark_no_show: bool


def _zone():
    profile = current_user.mechanic_profile
    return (profile.time_zone if profile else None) or "UTC"


def _row(appointment, zone, now):
    recent = appointment.starts_at <= now < appointment.starts_at + NO_SHOW_WITHIN
    grace_over = now >= appointment.starts_at + appointments.NO_SHOW_GRACE
    waiting = appointment.status == "booked" and appointment.starts_at + NO_SHOW_WITHIN > now and not grace_over
    return Row(appointment, availability.local(appointment.starts_at, zone), availability.local(appointment.ends_at, zone),
               no_show_from=availability.local(appointment.starts_at + appointments.NO_SHOW_GRACE, zone)
               if waiting else None,
               can_mark_no_show=appointment.status == "booked" and recent and grace_over)


@bp.get("/appointments")
def appointments_index():
    zone, now = _zone(), clock.now()
    today = availability.local(now, zone).date()
    view = "week" if request.args.get("view") == "week" else "day"
    try:
        day = date.fromisoformat(request.args.get("day", ""))
    except ValueError:
        day = today
    first = day - timedelta(days=day.weekday()) if view == "week" else day
    count = 7 if view == "week" else 1
    start, _ = availability.day_window(first, zone)
    _, end = availability.day_window(first + timedelta(days=count - 1), zone)
    found = db.session.scalars(db.select(Appointment).where(
        Appointment.mechanic_id == current_user.id, Appointment.status == "booked",
        Appointment.starts_at < end, Appointment.ends_at > start).order_by(Appointment.starts_at)).all()
    days = {first + timedelta(days=n): [] for n in range(count)}
    for appointment in found:
        row = _row(appointment, zone, now)
        days.setdefault(row.starts.date(), []).append(row)
    step = timedelta(days=count)
    recent = db.session.scalars(db.select(Appointment).where(
        Appointment.mechanic_id == current_user.id, Appointment.status == "booked",
        Appointment.starts_at <= now - appointments.NO_SHOW_GRACE,
        Appointment.starts_at > now - NO_SHOW_WITHIN).order_by(Appointment.starts_at)).all()
    return render_template("mechanic/appointments/index.html", view=view, day=day, today=today, zone=zone,
                           days=[(d, days[d]) for d in sorted(days) if first <= d < first + step],
                           previous=first - step, following=first + step, total=len(found),
                           awaiting=[_row(a, zone, now) for a in recent])


@bp.post("/appointments/<int:appointment_id>/no-show")
def appointment_no_show(appointment_id):
    appointment = db.session.get(Appointment, appointment_id)
    if appointment is None or appointment.mechanic_id != current_user.id:
        abort(404)
    try:
        appointments.mark_no_show(appointment.id, current_user.id)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash(f"Marked as a no-show. {appointment.customer.full_name} gets 50% as account credit.", "success")
    back = request.form.get("next", "")
    return redirect(back if back.startswith("/mechanic/appointments") else url_for("mechanic.appointments_index"),
                    code=303)
