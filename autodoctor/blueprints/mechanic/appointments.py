"""The mechanic's booked appointments, as a day or a week in their own zone
(`mechanic_profile.time_zone`). From 15 minutes before the start an online appointment shows
"Waiting for waiver" until the customer has signed, then "Join the room"; an in-person visit
offers the waiver on this tablet, then "Visit done" (the deposit is paid out). A booked
appointment that started 10 minutes ago or more (and less than 24 hours ago) offers "Mark
no-show"."""
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from autodoctor import clock
from autodoctor.blueprints.mechanic import bp
from autodoctor.extensions import db
from autodoctor.models import Appointment
from autodoctor.services import appointments, availability, waivers
from autodoctor.services.errors import ServiceError
from autodoctor.services.intakes import WAIVER_VERSION

NO_SHOW_WITHIN = timedelta(hours=24)


@dataclass
class Row:
    appointment: Appointment
    starts: datetime  # aware, in the mechanic's zone
    ends: datetime
    no_show_from: datetime | None  # aware; set while the start is under 24 h ago and no-show not yet allowed
    can_mark_no_show: bool
    opens: bool = False  # from 15 minutes before the start until the end
    signed: bool = False  # the customer's waiver
    can_complete: bool = False  # an in-person visit that started, waiver signed


def _zone():
    profile = current_user.mechanic_profile
    return (profile.time_zone if profile else None) or "UTC"


def _row(appointment, zone, now):
    recent = appointment.starts_at <= now < appointment.starts_at + NO_SHOW_WITHIN
    grace_over = now >= appointment.starts_at + appointments.NO_SHOW_GRACE
    signed = appointments.waiver_signed(appointment)  # then the customer has come
    open_ = appointment.status == "booked" and not signed
    waiting = open_ and appointment.starts_at + NO_SHOW_WITHIN > now and not grace_over
    return Row(appointment, availability.local(appointment.starts_at, zone), availability.local(appointment.ends_at, zone),
               no_show_from=availability.local(appointment.starts_at + appointments.NO_SHOW_GRACE, zone)
               if waiting else None,
               can_mark_no_show=open_ and recent and grace_over,
               opens=appointments.can_open(appointment, now), signed=signed,
               can_complete=appointment.kind == "in_person" and appointment.status == "booked"
               and now >= appointment.starts_at and signed)


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
        Appointment.mechanic_id == current_user.id, Appointment.status.in_(("booked", "started")),
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


def _own(appointment_id):
    appointment = db.session.get(Appointment, appointment_id)
    if appointment is None or appointment.mechanic_id != current_user.id:
        abort(404)
    return appointment


def _back():
    back = request.form.get("next", "")
    return redirect(back if back.startswith("/mechanic/appointments") else url_for("mechanic.appointments_index"),
                    code=303)


def _act(change, success):
    """Run a state change of the appointment's; flash what happened and go back to the calendar."""
    try:
        change()
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash(success, "success")
    return _back()


@bp.post("/appointments/<int:appointment_id>/no-show")
def appointment_no_show(appointment_id):
    appointment = _own(appointment_id)
    return _act(lambda: appointments.mark_no_show(appointment.id, current_user.id),
                f"Marked as a no-show. {appointment.customer.full_name} gets 50% as account credit.")


def _render_tablet_waiver(appointment, status=200, errors=None, signed_name=None):
    zone = _zone()
    return render_template("mechanic/appointments/waiver.html", row=_row(appointment, zone, clock.now()),
                           errors=errors or {}, signed_name=signed_name, waiver_version=WAIVER_VERSION,
                           opens_at=availability.local(appointment.starts_at - appointments.OPENS_BEFORE, zone)), status


@bp.get("/appointments/<int:appointment_id>/waiver")
def appointment_tablet_waiver(appointment_id):
    """An in-person visit: the customer signs on this tablet."""
    return _render_tablet_waiver(_own(appointment_id))


@bp.post("/appointments/<int:appointment_id>/waiver")
def appointment_tablet_waiver_sign(appointment_id):
    appointment = _own(appointment_id)
    try:
        appointments.sign_waiver(appointment.id, current_user, request.form.get("signed_name"),
                                 request.form.get("signature"), request.remote_addr,
                                 request.headers.get("User-Agent"))
    except waivers.WaiverErrors as exc:
        db.session.rollback()
        return _render_tablet_waiver(appointment, 422, exc.errors, request.form.get("signed_name"))
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("mechanic.appointments_index"), code=303)
    db.session.commit()
    flash(f"Waiver signed by {appointment.customer.full_name}. Thank you — please hand the tablet back.", "success")
    return redirect(url_for("mechanic.appointments_index", _anchor=f"appointment-{appointment.id}"), code=303)


@bp.post("/appointments/<int:appointment_id>/complete")
def appointment_complete(appointment_id):
    appointment = _own(appointment_id)
    return _act(lambda: appointments.complete_visit(appointment.id, current_user.id),
                f"Visit with {appointment.customer.full_name} done. The deposit is paid out; "
                "settle the balance at the counter.")
