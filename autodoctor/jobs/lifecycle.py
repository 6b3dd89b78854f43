"""RQ jobs for session timeouts: ids in, call the service, commit. Each is idempotent:
a transition that no longer applies (already accepted, already ended) does nothing."""
from autodoctor.extensions import db
from autodoctor.jobs import app_context
from autodoctor.services import lifecycle


@app_context
def mark_unattended_job(request_id):
    lifecycle.mark_unattended(request_id)
    db.session.commit()


@app_context
def expire_request_job(request_id):
    lifecycle.expire_request(request_id)
    db.session.commit()


@app_context
def cancel_no_show_job(request_id):
    lifecycle.cancel_no_show(request_id)
    db.session.commit()


@app_context
def cancel_orphaned_job(session_id):
    lifecycle.cancel_orphaned(session_id)
    db.session.commit()


@app_context
def end_at_time_limit_job(session_id):
    lifecycle.end_at_time_limit(session_id)
    db.session.commit()


@app_context
def warn_time_left_job(session_id):
    lifecycle.warn_time_left(session_id)
    db.session.commit()


@app_context
def sweep_job():
    from autodoctor.services import sweep

    sweep.run_sweep()
