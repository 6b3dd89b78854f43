from autodoctor.extensions import db
from autodoctor.jobs import app_context
from autodoctor.services import notifications


@app_context
def send_email_job(outbox_id):
    notifications.deliver(outbox_id)
    db.session.commit()
