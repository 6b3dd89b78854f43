from flask import Blueprint

bp = Blueprint("public", __name__)

from autodoctor.blueprints.public import mechanics, notifications, presence, routes  # noqa: E402,F401
