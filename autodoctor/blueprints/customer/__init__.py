from flask import Blueprint

from autodoctor.security import role_required

bp = Blueprint("customer", __name__, url_prefix="/customer")
bp.before_request(role_required("customer"))

from autodoctor.blueprints.customer import appointments, presenters, routes, scheduling  # noqa: E402,F401
