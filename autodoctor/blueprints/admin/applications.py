"""Admin console: applications."""
from autodoctor.blueprints.admin import bp  # noqa: F401
