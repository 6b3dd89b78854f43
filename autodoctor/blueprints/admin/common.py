"""What every admin view shares: the acting admin for the audit log, and the console's sections."""
from flask import current_app, request
from flask_login import current_user

from autodoctor.blueprints.admin import bp
from autodoctor.services.audit import Actor

# (endpoint, label), in nav order; a section shows once its view exists.
SECTIONS = (
    ("admin.dashboard_index", "Dashboard"),
    ("admin.queue_index", "Unattended"),
    ("admin.requests_index", "Requests"),
    ("admin.sessions_index", "Sessions"),
    ("admin.intakes_index", "Intakes"),
    ("admin.customers_index", "Customers"),
    ("admin.mechanics_index", "Mechanics"),
    ("admin.payments_index", "Payments"),
    ("admin.applications_index", "Applications"),
    ("admin.plans_index", "Plans & fees"),
    ("admin.maintenance_index", "Maintenance"),
    ("admin.outbox_index", "Outbox"),
    ("admin.audit_index", "Audit log"),
)


def actor():
    """The admin making this request, for services.audit."""
    return Actor(current_user.id, request.remote_addr)


@bp.app_context_processor
def _sections():
    def admin_sections():
        return [(endpoint, label) for endpoint, label in SECTIONS if endpoint in current_app.view_functions]

    return {"admin_sections": admin_sections}
