"""RQ jobs for appointments. Idempotent: a reminder already sent (or not due) does nothing."""
from autodoctor.extensions import db
from autodoctor.jobs import app_context
from autodoctor.services import appointments


@app_context
def send_reminder_job(appointment_id):
    appointments.send_due_reminder(appointment_id)
    db.session.commit()


@app_context
def check_match_job(appointment_id):
    appointments.check_match(appointment_id)
    db.session.commit()
