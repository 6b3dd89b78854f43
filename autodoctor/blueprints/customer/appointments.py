"""The customer's appointments: upcoming and past ones in their own zone, with "Add to
calendar", cancel (after a confirmation stating what comes back under the tiers), reschedule
to another free time of the same mechanic, and from 15 minutes before the start the waiver
(typed name and drawn signature) and "Join", which opens the session room."""
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from autodoctor import clock
from autodoctor.blueprints.customer import bp
from autodoctor.extensions import db
from autodoctor.models import Appointment, Payment
from autodoctor.services import appointments, availability, invites, waivers
from autodoctor.services.appointments import SlotTaken
from autodoctor.services.errors import ServiceError
from autodoctor.services.intakes import WAIVER_VERSION

RESCHEDULE_DAYS = 14  # how many days of free times the reschedule page offers


@dataclass
class Row:
    appointment: Appointment
    starts: datetime  # aware, in the customer's zone
    ends: datetime
    can_join: bool
    can_change: bool  # cancel / add to calendar
    can_move: bool  # reschedule (up to 2 hours before)
    signed: bool = False  # the waiver of the day


def _row(appointment, now):
    zone = appointment.customer_time_zone or "UTC"
    booked = appointment.status == "booked"
    return Row(appointment, availability.local(appointment.starts_at, zone), availability.local(appointment.ends_at, zone),
               can_join=appointments.can_open(appointment, now),
               can_change=booked and appointment.starts_at > now,
               can_move=booked and appointment.starts_at - now >= appointments.PARTIAL_REFUND_BEFORE,
               signed=appointments.waiver_signed(appointment))


def _own(appointment_id):
    appointment = db.session.get(Appointment, appointment_id)
    if appointment is None or appointment.customer_id != current_user.id:
        abort(404)
    return appointment


def _paid(appointment):
    """(total paid, of which by card) in cents: the tiers apply to card and account credit
    alike, and what was paid from credit comes back as credit."""
    payment = db.session.scalar(db.select(Payment).where(
        Payment.appointment_id == appointment.id, Payment.status == "paid"))
    return (payment.amount_cents + payment.credit_cents, payment.amount_cents) if payment else (0, 0)


@bp.get("/appointments")
def appointments_index():
    now = clock.now()
    mine = db.session.scalars(db.select(Appointment).where(
        Appointment.customer_id == current_user.id,
        Appointment.status.in_(("booked", "started", "cancelled", "completed", "no_show")))
        .order_by(Appointment.starts_at)).all()

    def ahead(a):
        return a.status in ("booked", "started") and a.ends_at > now

    upcoming = [_row(a, now) for a in mine if ahead(a)]
    past = [_row(a, now) for a in reversed(mine) if not ahead(a)]
    return render_template("customer/appointments/index.html", upcoming=upcoming, past=past)


@bp.get("/appointments/<int:appointment_id>.ics")
def appointment_ics(appointment_id):
    appointment = _own(appointment_id)
    if appointment.status not in ("booked", "cancelled"):
        abort(404)
    response = make_response(invites.ics(appointment, cancelled=appointment.status == "cancelled"))
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="autodoctor-appointment-{appointment.id}.ics"'
    return response


@bp.get("/appointments/<int:appointment_id>/cancel")
def appointment_cancel_confirm(appointment_id):
    appointment = _own(appointment_id)
    now = clock.now()
    row = _row(appointment, now)
    if not row.can_change:
        flash("This appointment can no longer be cancelled.", "error")
        return redirect(url_for("customer.appointments_index"), code=303)
    paid, by_card = _paid(appointment)
    refund, credit, fee = appointments.cancellation_terms(paid, appointment.starts_at - now)
    to_card = min(refund, by_card)
    return render_template("customer/appointments/cancel.html", row=row, paid=paid, refund=refund, to_card=to_card,
                           credit=credit + refund - to_card, fee=fee)


@bp.post("/appointments/<int:appointment_id>/cancel")
def appointment_cancel(appointment_id):
    appointment = _own(appointment_id)
    try:
        refund, credit = appointments.cancel(appointment.id, current_user.id)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("customer.appointments_index"), code=303)
    db.session.commit()
    from autodoctor.services.plans import format_price

    outcome = " ".join(part for part in (
        refund and f"{format_price(refund)} will be refunded to your card within a few days.",
        credit and f"{format_price(credit)} has been added to your account as credit for a future booking.",
    ) if part) or "Nothing was charged, so nothing is refunded."
    flash(f"Appointment cancelled. {outcome}", "success")
    return redirect(url_for("customer.appointments_index"), code=303)


def _slot_days(appointment, now, day=None):
    """The mechanic's free times for a reschedule, grouped by the customer's local day."""
    zone = appointment.customer_time_zone or "UTC"
    today = availability.local(now, zone).date()
    first = max(day or today, today)
    start, _ = availability.day_window(first, zone)
    _, end = availability.day_window(first + timedelta(days=RESCHEDULE_DAYS - 1), zone)
    found = availability.slots(appointment.mechanic_id, start, end, appointment.minutes, now, moving=appointment.id)
    days = {}
    for slot in found:
        if slot.starts_at == appointment.starts_at:
            continue
        starts = availability.local(slot.starts_at, zone)
        days.setdefault(starts.date(), []).append((slot.starts_at.strftime("%Y-%m-%dT%H:%M"), starts))
    return list(days.items())


def _render_reschedule(appointment, now, status=200, problem=None, alternatives=None):
    zone = appointment.customer_time_zone or "UTC"
    day = None
    try:
        day = date.fromisoformat(request.args.get("from", ""))
    except ValueError:
        pass
    offered = [(s.starts_at.strftime("%Y-%m-%dT%H:%M"), availability.local(s.starts_at, zone))
               for s in alternatives or []]
    return render_template("customer/appointments/reschedule.html", row=_row(appointment, now),
                           days=_slot_days(appointment, now, day), problem=problem, alternatives=offered,
                           span_days=RESCHEDULE_DAYS), status


@bp.get("/appointments/<int:appointment_id>/reschedule")
def appointment_reschedule_show(appointment_id):
    appointment = _own(appointment_id)
    now = clock.now()
    if not _row(appointment, now).can_move:
        flash("Appointments can be moved up to 2 hours before they start.", "error")
        return redirect(url_for("customer.appointments_index"), code=303)
    return _render_reschedule(appointment, now)


@bp.post("/appointments/<int:appointment_id>/reschedule")
def appointment_reschedule(appointment_id):
    appointment = _own(appointment_id)
    now = clock.now()
    try:
        starts_at = datetime.strptime(request.form.get("starts_at", ""), "%Y-%m-%dT%H:%M")
    except ValueError:
        return _render_reschedule(appointment, now, 422, "Choose one of the free times below.")
    try:
        moved = appointments.reschedule(appointment.id, current_user.id, starts_at)
    except SlotTaken as exc:
        db.session.rollback()
        return _render_reschedule(db.session.get(Appointment, appointment_id), now, 409, exc.message,
                                  exc.alternatives)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("customer.appointments_index"), code=303)
    db.session.commit()
    starts = availability.local(moved.starts_at, moved.customer_time_zone or "UTC")
    flash(f"Moved to {starts:%a %d %b, %H:%M} ({starts.tzname()}). Your calendar invite is updated: "
          "download it again to update your calendar.", "success")
    return redirect(url_for("customer.appointments_index", _anchor=f"appointment-{moved.id}"), code=303)


def _render_waiver(appointment, now, status=200, errors=None, signed_name=None):
    return render_template("customer/appointments/waiver.html", row=_row(appointment, now), errors=errors or {},
                           signed_name=signed_name, waiver_version=WAIVER_VERSION,
                           over=now >= appointment.ends_at or appointment.status not in ("booked", "started"),
                           opens_at=availability.local(appointment.starts_at - appointments.OPENS_BEFORE,
                                                       appointment.customer_time_zone or "UTC")), status


@bp.get("/appointments/<int:appointment_id>/waiver")
def appointment_waiver(appointment_id):
    appointment = _own(appointment_id)
    if appointments.waiver_signed(appointment) and appointment.kind == "online":
        return redirect(url_for("customer.appointments_index", _anchor=f"appointment-{appointment.id}"), code=303)
    return _render_waiver(appointment, clock.now())


@bp.post("/appointments/<int:appointment_id>/waiver")
def appointment_waiver_sign(appointment_id):
    appointment = _own(appointment_id)
    now = clock.now()
    try:
        appointments.sign_waiver(appointment.id, current_user, request.form.get("signed_name"),
                                 request.form.get("signature"), request.remote_addr,
                                 request.headers.get("User-Agent"), now=now)
    except waivers.WaiverErrors as exc:
        db.session.rollback()
        return _render_waiver(appointment, now, 422, exc.errors, request.form.get("signed_name"))
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("customer.appointments_index"), code=303)
    db.session.commit()
    return _join(appointment_id, now)


@bp.post("/appointments/<int:appointment_id>/join")
def appointment_join(appointment_id):
    appointment = _own(appointment_id)
    if not appointments.waiver_signed(appointment):
        return redirect(url_for("customer.appointment_waiver", appointment_id=appointment.id), code=303)
    return _join(appointment.id, clock.now())


def _join(appointment_id, now):
    """Open the appointment's room (or find it open) and go in."""
    try:
        session = appointments.open_room(appointment_id, current_user.id, now=now)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("customer.appointments_index", _anchor=f"appointment-{appointment_id}"), code=303)
    db.session.commit()
    return redirect(url_for("room.room_show", session_id=session.id), code=303)
