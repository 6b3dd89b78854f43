from flask import Blueprint

bp = Blueprint("auth", __name__)

from autodoctor.blueprints.auth import apply, routes  # noqa: E402,F401
