"""Live fragments for the admin dashboard and the unattended queue (channel "admin"): on every
request or session change, the queue and the unattended count are rendered once, as one
message of out-of-band swaps that both pages take (each swaps what it shows)."""
from flask import render_template

from autodoctor.blueprints.admin import bp
from autodoctor.realtime import Message, presenter
from autodoctor.services import admin_dashboard

CHANNEL = "admin"


def queue_context(errors=None):
    """What templates/admin/queue/_queue.html needs (`errors`: {request id: {field: message}})."""
    items = admin_dashboard.queue()
    return {"items": items, "mechanics": admin_dashboard.eligible_mechanics() if items else [],
            "errors": errors or {}}


def queue_message():
    html = render_template("admin/queue/_live.html", oob=True, unattended_count=admin_dashboard.unattended_count(),
                           **queue_context())
    return Message(channel=CHANNEL, event="queue", data=html)


@presenter("request.changed", "session.changed")
def present_queue(**_):
    return [queue_message()]


@bp.app_template_filter("duration_label")
def _duration_label(seconds):
    return admin_dashboard.duration_label(seconds)
