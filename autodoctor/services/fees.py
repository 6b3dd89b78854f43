"""The platform fee: a history of fee rules, the newest in force. A session keeps the rule in
force when it was created (`sessions.fee_percent`), so a change applies to new sessions only."""
from flask import current_app

from autodoctor.extensions import db
from autodoctor.models import FeeRule
from autodoctor.services import audit
from autodoctor.services.errors import ValidationError

MIN_PERCENT, MAX_PERCENT = 15, 25
NOTE_MAX = 200
PERCENT_MESSAGE = f"The platform fee is a whole percent from {MIN_PERCENT} to {MAX_PERCENT}."


def current_percent():
    """The fee for a session created now: the newest rule, or the configured default."""
    latest = db.session.scalar(db.select(FeeRule.platform_percent).order_by(FeeRule.id.desc()).limit(1))
    return latest if latest is not None else default_percent()


def percent_for(session):
    return session.fee_percent if session.fee_percent is not None else default_percent()


def history():
    """Every fee rule, newest first."""
    return db.session.scalars(db.select(FeeRule).order_by(FeeRule.id.desc())).all()


def default_percent():
    return current_app.config.get("PLATFORM_FEE_PERCENT", 20)


def set_rule(percent, note, actor):
    """A new platform fee for sessions created from now on (audit "fee.update"). Sessions that
    already exist keep the fee they were created with."""
    note = (note or "").strip()
    if not isinstance(percent, int) or isinstance(percent, bool) or not MIN_PERCENT <= percent <= MAX_PERCENT:
        raise ValidationError(PERCENT_MESSAGE, field="percent")
    if not note:
        raise ValidationError("Say why the fee changes (kept in the history).", field="note")
    if len(note) > NOTE_MAX:
        raise ValidationError(f"Keep the note under {NOTE_MAX} characters.", field="note")
    # One change at a time: the newest rule is read under a lock where the database has them.
    db.session.execute(db.select(FeeRule.id).order_by(FeeRule.id.desc()).limit(1).with_for_update())
    before = current_percent()
    if percent == before:
        raise ValidationError(f"The platform fee is already {percent}%.", field="percent")
    rule = FeeRule(platform_percent=percent, note=note, created_by_id=actor.id if actor else None)
    db.session.add(rule)
    db.session.flush()
    audit.record(actor, "fee.update", "fee_rule", rule.id, f"Platform fee {before}% → {percent}% for new sessions",
                 before={"platform_percent": before}, after={"platform_percent": percent}, reason=note)
    return rule
