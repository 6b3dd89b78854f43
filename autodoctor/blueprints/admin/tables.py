"""Admin console: tables."""
from autodoctor.blueprints.admin import bp  # noqa: F401
