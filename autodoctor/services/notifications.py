"""E-mail: every message is written to the outbox table, then delivered by a job over
SMTP when SMTP is configured (the outbox is all there is in embedded mode)."""
from flask import render_template

from autodoctor import clock, jobs
from autodoctor.extensions import db
from autodoctor.integrations import mail
from autodoctor.models import OutboxEmail


def queue_email(to, subject, template, **context):
    email = OutboxEmail(to_address=to, subject=subject, body_text=render_template(template, **context))
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
    try:
        mail.send(email.to_address, email.subject, email.body_text)
    except OSError as exc:
        email.error = str(exc)[:500]
        db.session.commit()
        raise
    email.sent_at = clock.now()


def payment_received(payment):
    customer = payment.intake.customer
    queue_email(customer.email, f"Receipt: {payment.plan.name}", "emails/receipt.txt",
                payment=payment, customer=customer)


def session_cancelled(session, reason, refunded_cents):
    queue_email(session.customer.email, "Your AutoDoctor session was cancelled", "emails/cancelled.txt",
                session=session, reason=reason, refunded_cents=refunded_cents)


def session_completed(session):
    queue_email(session.customer.email, "Your AutoDoctor session summary", "emails/summary.txt",
                session=session)
