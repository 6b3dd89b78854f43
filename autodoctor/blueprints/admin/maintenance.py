"""Admin console: maintenance."""
from autodoctor.blueprints.admin import bp  # noqa: F401
