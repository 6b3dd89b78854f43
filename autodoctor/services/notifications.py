"""E-mail: every message is written to the outbox table, then delivered by a job over
SMTP when SMTP is configured (the outbox is all there is in embedded mode)."""
from flask import render_template

from autodoctor import clock, jobs
from autodoctor.extensions import db
from autodoctor.integrations import mail
from autodoctor.models import DiagnosticReport, OutboxEmail
from autodoctor.services import reports


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


def session_cancelled(session, reason, refunded_cents):
    queue_email(session.customer.email, "Your AutoDoctor session was cancelled", "emails/cancelled.txt",
                session=session, reason=reason, refunded_cents=refunded_cents)


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
    from autodoctor.services.availability import local

    when = {1440: "tomorrow", 60: "in 1 hour", 15: "in 15 minutes"}[minutes]
    queue_email(appointment.customer.email, f"Reminder: your AutoDoctor appointment is {when}",
                "emails/appointment_reminder.txt", appointment=appointment, when=when,
                starts=local(appointment.starts_at, appointment.customer_time_zone))


def appointment_booked(appointment):
    """The confirmation, with the calendar invite."""
    from autodoctor.services import invites
    from autodoctor.services.availability import local

    queue_email(appointment.customer.email, f"Booked: {appointment.plan.name} with {appointment.mechanic.full_name}",
                "emails/appointment_booked.txt", appointment=appointment,
                starts=local(appointment.starts_at, appointment.customer_time_zone),
                attachment=("appointment.ics", "text/calendar", invites.ics(appointment)))
