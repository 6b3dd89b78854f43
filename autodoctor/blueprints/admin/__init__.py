from flask import Blueprint

from autodoctor.security import role_required

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(role_required("admin"))

from autodoctor.blueprints.admin import (  # noqa: E402,F401
    applications,
    common,
    maintenance,
    presenters,
    routes,
    sessions,
    settings,
    tables,
    users,
)
