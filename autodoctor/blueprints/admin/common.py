"""What every admin view shares: the acting admin for the audit log, and the console's sections."""
from flask import request
from flask_login import current_user

from autodoctor.blueprints.admin import bp
from autodoctor.services.audit import Actor

# (endpoint, label, endpoint prefixes of the pages that belong to it), in nav order.
SECTIONS = (
    ("admin.dashboard_index", "Dashboard", ("admin.dashboard_",)),
    ("admin.queue_index", "Unattended", ("admin.queue_", "admin.request_")),
    ("admin.requests_index", "Requests", ("admin.requests_",)),
    ("admin.sessions_index", "Sessions", ("admin.sessions_", "admin.session_")),
    ("admin.intakes_index", "Intakes", ("admin.intakes_",)),
    ("admin.customers_index", "Customers", ("admin.customers_",)),
    ("admin.mechanics_index", "Mechanics", ("admin.mechanics_",)),
    ("admin.payments_index", "Payments", ("admin.payments_",)),
    ("admin.applications_index", "Applications", ("admin.application", "admin.credential_")),
    ("admin.plans_index", "Plans & fees", ("admin.plan", "admin.fee_rule")),
    ("admin.maintenance_index", "Maintenance", ("admin.maintenance_",)),
    ("admin.outbox_index", "Outbox", ("admin.outbox_",)),
    ("admin.audit_index", "Audit log", ("admin.audit_",)),
)


def actor():
    """The admin making this request, for services.audit."""
    return Actor(current_user.id, request.remote_addr)


@bp.app_context_processor
def _sections():
    def admin_sections():
        """(endpoint, label, whether the current page is in it) of each section."""
        here = request.endpoint or ""
        return [(endpoint, label, here.startswith(prefixes)) for endpoint, label, prefixes in SECTIONS]

    return {"admin_sections": admin_sections}
