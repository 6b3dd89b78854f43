"""RQ jobs for the waitlist. Idempotent: each waiting entry is told once (a guarded update)."""
from autodoctor.extensions import db
from autodoctor.jobs import app_context
from autodoctor.services import waitlist


@app_context
def mechanic_came_online_job(mechanic_id):
    """Presence enqueues this when a mechanic goes offline -> online."""
    waitlist.mechanic_came_online(mechanic_id)
    db.session.commit()
