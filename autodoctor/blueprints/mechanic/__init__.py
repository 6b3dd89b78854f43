from flask import Blueprint

from autodoctor.security import role_required

bp = Blueprint("mechanic", __name__, url_prefix="/mechanic")
bp.before_request(role_required("mechanic"))

from autodoctor.blueprints.mechanic import appointments, availability, presence, presenters, routes  # noqa: E402,F401
