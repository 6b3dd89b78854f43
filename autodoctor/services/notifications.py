"""E-mail and in-app notices. Every e-mail is written to the outbox table, then delivered by
a job over SMTP when SMTP is configured (the outbox is all there is in embedded mode). An
in-app notice is a row shown to its person on every page until dismissed; each change is
announced (`notices.changed`) so open pages update without a reload."""
from datetime import timedelta

from flask import render_template
from sqlalchemy import update

from autodoctor import clock, jobs
from autodoctor.extensions import db
from autodoctor.integrations import mail
from autodoctor.models import DiagnosticReport, Notification, OutboxEmail
from autodoctor.realtime import emit
from autodoctor.services import reports
from autodoctor.services.errors import NotFound
from autodoctor.urls import url

NOTICES_SHOWN = 5  # the notices area shows at most this many, newest first
REMINDER_WHEN = {1440: "tomorrow", 60: "in 1 hour", 15: "in 15 minutes"}


def queue_email(to, subject, template, report_id=None, attachment=None, **context):
    """Write an e-mail to the outbox and deliver it after commit; `report_id` attaches that
    diagnostic report as a PDF (rendered at delivery); `attachment` is (name, type, bytes)."""
    name, kind, body = attachment or (None, None, None)
    email = OutboxEmail(to_address=to, subject=subject, body_text=render_template(template, **context),
                        report_id=report_id, attachment_name=name, attachment_type=kind, attachment_body=body)
    db.session.add(email)
    db.session.flush()
    from autodoctor.jobs.mail import send_email_job

    jobs.enqueue(send_email_job, email.id)
    return email


def deliver(outbox_id):
    """Send one outbox e-mail over SMTP; a failure is recorded and re-raised so the job fails."""
    email = db.session.get(OutboxEmail, outbox_id)
    if email is None or email.sent_at or not mail.configured():
        return
    attachments = []
    if email.report_id:
        report = db.session.get(DiagnosticReport, email.report_id)
        if report is not None:
            attachments.append((reports.pdf_filename(report), "application/pdf", reports.render_pdf(report)))
    if email.attachment_body is not None:
        attachments.append((email.attachment_name, email.attachment_type, email.attachment_body))
    try:
        mail.send(email.to_address, email.subject, email.body_text, attachments=attachments)
    except OSError as exc:
        email.error = str(exc)[:500]
        db.session.commit()
        raise
    email.sent_at = clock.now()


def payment_received(payment):
    customer = payment.customer
    queue_email(customer.email, f"Receipt: {payment.description}", "emails/receipt.txt",
                payment=payment, customer=customer)


def session_cancelled(session, reason, refunded_cents, credited_cents=0):
    queue_email(session.customer.email, "Your AutoDoctor session was cancelled", "emails/cancelled.txt",
                session=session, reason=reason, refunded_cents=refunded_cents, credited_cents=credited_cents)


def session_completed(session):
    report = session.report
    if report is None:
        queue_email(session.customer.email, "Your AutoDoctor session summary", "emails/summary.txt",
                    session=session)
        return
    queue_email(session.customer.email, "Your AutoDoctor session summary and diagnostic report",
                "emails/summary_report.txt", report_id=report.id, session=session, view=reports.view(report))
    report.emailed_at = clock.now()


def report_ready(report):
    """A report written or changed after the session ended: the customer gets it (again)."""
    updated = report.emailed_at is not None
    session = report.session
    subject = "Your AutoDoctor diagnostic report (updated)" if updated else "Your AutoDoctor diagnostic report"
    queue_email(session.customer.email, subject, "emails/report.txt", report_id=report.id, session=session,
                view=reports.view(report), updated=updated)
    report.emailed_at = clock.now()


def appointment_reminder(appointment, minutes):
    """The 24-hour, 1-hour or 15-minute reminder: an e-mail to the customer, and an in-app
    notice for the customer and for the mechanic, each with the time on their own clock."""
    from autodoctor.services.availability import local

    when = REMINDER_WHEN[minutes]
    starts = local(appointment.starts_at, appointment.customer_time_zone or "UTC")
    queue_email(appointment.customer.email, f"Reminder: your AutoDoctor appointment is {when}",
                "emails/appointment_reminder.txt", appointment=appointment, when=when, starts=starts)
    sent_at = appointment.starts_at - timedelta(minutes=minutes)  # the mark, not a late sweep's time
    at = _at(starts, local(sent_at, starts.tzinfo), minutes)
    text = f"Your appointment with {appointment.mechanic.full_name} {'is' if minutes == 1440 else 'starts'} {at}"
    notify(appointment.customer_id, "appointment_reminder",
           text + (" — sign the waiver and join." if minutes == 15 else "."),
           link=url("customer.appointments_index", _anchor=f"appointment-{appointment.id}"))
    profile = appointment.mechanic.mechanic_profile
    mechanic_starts = local(appointment.starts_at, (profile.time_zone if profile else None) or "UTC")
    at = _at(mechanic_starts, local(sent_at, mechanic_starts.tzinfo), minutes)
    notify(appointment.mechanic_id, "appointment_reminder", f"Appointment with {appointment.customer.full_name} {at}.",
           link=url("mechanic.appointments_index", day=mechanic_starts.date().isoformat()))


def _at(starts, sent, minutes):
    """"tomorrow at 10:00 GMT", "in 1 hour, at 10:00 GMT": `starts` and `sent` on one clock."""
    clock_time = starts.strftime("%H:%M %Z")
    if minutes != 1440:
        return f"{REMINDER_WHEN[minutes]}, at {clock_time}"
    days = (starts.date() - sent.date()).days  # 24 hours ahead is not always "tomorrow" (DST)
    day = {0: "today", 1: "tomorrow"}.get(days) or starts.strftime("on %a %d %b")
    return f"{day} at {clock_time}"


def appointment_booked(appointment):
    """The confirmation, with the calendar invite."""
    from autodoctor.services import invites
    from autodoctor.services.availability import local

    queue_email(appointment.customer.email, f"Booked: {appointment.plan.name} with {appointment.mechanic.full_name}",
                "emails/appointment_booked.txt", appointment=appointment,
                starts=local(appointment.starts_at, appointment.customer_time_zone),
                attachment=("appointment.ics", "text/calendar", invites.ics(appointment)))


# In-app notices ---------------------------------------------------------------------------


def notify(user_id, kind, text, link=None):
    """A notice for one person, shown until they dismiss it; open pages get it after commit."""
    notice = Notification(user_id=user_id, kind=kind, text=text[:300], link=link)
    db.session.add(notice)
    db.session.flush()
    emit("notices.changed", user_id=user_id)
    return notice


def unread(user_id, limit=NOTICES_SHOWN):
    """The person's notices not yet dismissed, newest first."""
    return db.session.scalars(db.select(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))
        .order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)).all()


def dismiss(user_id, notification_id, now=None):
    """Dismiss one of the person's own notices (a guarded update: another person's notice is
    "not found", whether it exists or not). Dismissing it twice (a double click) is fine."""
    done = db.session.execute(
        update(Notification).where(Notification.id == notification_id, Notification.user_id == user_id,
                                   Notification.read_at.is_(None))
        .values(read_at=now or clock.now()), execution_options={"synchronize_session": False}).rowcount
    if done:
        emit("notices.changed", user_id=user_id)
    elif db.session.scalar(db.select(Notification.id).where(
            Notification.id == notification_id, Notification.user_id == user_id)) is None:
        raise NotFound("That notice does not exist.")


def dismiss_all(user_id, now=None):
    """Dismiss every notice the person has not dismissed yet; returns how many."""
    done = db.session.execute(
        update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=now or clock.now()), execution_options={"synchronize_session": False}).rowcount
    if done:
        emit("notices.changed", user_id=user_id)
    return done


def _mechanic_zone(appointment):
    profile = appointment.mechanic.mechanic_profile
    return (profile.time_zone if profile else None) or "UTC"


def _changed_email(appointment, person, zone, subject, headline, cancelled=False):
    """An e-mail about a changed appointment with the updated invite (same UID, higher SEQUENCE)."""
    from autodoctor.services import invites
    from autodoctor.services.availability import local

    endpoint = "customer.appointments_index" if person.id == appointment.customer_id else "mechanic.appointments_index"
    queue_email(person.email, subject, "emails/appointment_changed.txt", appointment=appointment, person=person,
                headline=headline, cancelled=cancelled, starts=local(appointment.starts_at, zone),
                link=url(endpoint, _external=True),
                attachment=("appointment.ics", "text/calendar", invites.ics(appointment, cancelled=cancelled)))


def _when(appointment, zone):
    from autodoctor.services.availability import local

    return local(appointment.starts_at, zone).strftime("%a %d %b, %H:%M %Z")


def appointment_moved(appointment):
    """Rescheduled: the customer gets the updated invite, the mechanic a notice."""
    _changed_email(appointment, appointment.customer, appointment.customer_time_zone or "UTC",
                   f"Moved: {appointment.plan.name} with {appointment.mechanic.full_name}",
                   f"Your appointment is moved to {_when(appointment, appointment.customer_time_zone or 'UTC')}.")
    notify(appointment.mechanic_id, "appointment_changed",
           f"{appointment.customer.full_name} moved their appointment to {_when(appointment, _mechanic_zone(appointment))}.",
           link=url("mechanic.appointments_index"))


def appointment_cancelled(appointment):
    """Cancelled by the customer: the invite that removes it from their calendar; the mechanic is told."""
    _changed_email(appointment, appointment.customer, appointment.customer_time_zone or "UTC",
                   f"Cancelled: {appointment.plan.name} with {appointment.mechanic.full_name}",
                   "Your appointment is cancelled.", cancelled=True)
    notify(appointment.mechanic_id, "appointment_changed",
           f"{appointment.customer.full_name} cancelled the appointment of {_when(appointment, _mechanic_zone(appointment))}.",
           link=url("mechanic.appointments_index"))


def appointment_mechanic_changed(appointment, previous):
    """An "any available" booking handed to another mechanic 30 minutes before: the customer
    and the new mechanic are e-mailed (with the invite) and notified; the previous one is told."""
    customer, mechanic = appointment.customer, appointment.mechanic
    zone = appointment.customer_time_zone or "UTC"
    headline = (f"{previous.full_name} can no longer make it, so {mechanic.full_name} takes your appointment "
                f"at {_when(appointment, zone)}.")
    _changed_email(appointment, customer, zone, f"Your appointment has a new mechanic: {mechanic.full_name}", headline)
    notify(customer.id, "appointment_changed", headline,
           link=url("customer.appointments_index", _anchor=f"appointment-{appointment.id}"))
    when = _when(appointment, _mechanic_zone(appointment))
    _changed_email(appointment, mechanic, _mechanic_zone(appointment),
                   f"New appointment for you as the available mechanic: {customer.full_name}, {when}",
                   f"{customer.full_name} booked “any available”, and you are free then: the appointment is yours.")
    notify(mechanic.id, "appointment_changed", f"New appointment: {customer.full_name} at {when}.",
           link=url("mechanic.appointments_index"))
    notify(previous.id, "appointment_changed",
           f"The appointment with {customer.full_name} ({when}) went to {mechanic.full_name}, as you are not free then.",
           link=url("mechanic.appointments_index"))
