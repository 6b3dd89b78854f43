"""Admin console: settings."""
from autodoctor.blueprints.admin import bp  # noqa: F401
