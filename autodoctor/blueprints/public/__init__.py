from flask import Blueprint

bp = Blueprint("public", __name__)

from autodoctor.blueprints.public import routes  # noqa: E402,F401
