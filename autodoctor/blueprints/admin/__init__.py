from flask import Blueprint

from autodoctor.security import role_required

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(role_required("admin"))

from autodoctor.blueprints.admin import presenters, routes  # noqa: E402,F401
