"""RQ jobs for routing requests: ids in, call the service, commit. Idempotent: a request
already routed keeps its offers; a broadcast that already happened does nothing."""
from autodoctor.extensions import db
from autodoctor.jobs import app_context
from autodoctor.services import routing


@app_context
def route_request_job(request_id):
    routing.route_request(request_id)
    db.session.commit()


@app_context
def broadcast_job(request_id):
    routing.broadcast(request_id)
    db.session.commit()
