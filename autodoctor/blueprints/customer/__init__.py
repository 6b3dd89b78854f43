from flask import Blueprint

from autodoctor.security import role_required

bp = Blueprint("customer", __name__, url_prefix="/customer")
bp.before_request(role_required("customer"))

from autodoctor.blueprints.customer import (  # noqa: E402,F401
    appointments,
    favorites,
    presenters,
    routes,
    scheduling,
    waitlist,
)
