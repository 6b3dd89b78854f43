"""The platform fee: a history of fee rules, the newest in force. A session keeps the rule in
force when it was created (`sessions.fee_percent`), so a change applies to new sessions only."""
from flask import current_app

from autodoctor.extensions import db
from autodoctor.models import FeeRule

MIN_PERCENT, MAX_PERCENT = 15, 25


def current_percent():
    """The fee for a session created now: the newest rule, or the configured default."""
    latest = db.session.scalar(db.select(FeeRule.platform_percent).order_by(FeeRule.id.desc()).limit(1))
    return latest if latest is not None else current_app.config.get("PLATFORM_FEE_PERCENT", 20)


def percent_for(session):
    return session.fee_percent if session.fee_percent is not None else \
        current_app.config.get("PLATFORM_FEE_PERCENT", 20)
