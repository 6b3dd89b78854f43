"""Admins edit plans. A change applies to new sessions only: a checkout copies the plan's
price when it starts (`payments.amount_cents`) and a session its minutes when it is created
(`sessions.minutes`); a plan turned off is no longer offered (services.plans lists and
accepts active plans only) while its existing sessions carry on."""
import re
from decimal import Decimal

from autodoctor.extensions import db
from autodoctor.models import AuditEntry, Plan
from autodoctor.services import audit
from autodoctor.services.errors import NotFound, ValidationError

NAME_MIN, NAME_MAX = 2, 80
PRICE_MAX_CENTS = 99999
MINUTES_MIN, MINUTES_MAX = 1, 240
PHOTOS_MIN, PHOTOS_MAX = 0, 20
REASON_MAX = 500
EDITABLE = ("name", "price_cents", "minutes", "extension_price_cents", "max_photos", "active")

_AMOUNT = re.compile(r"(-)?\s*(\d+)?(?:\.(\d*))?")
PRICE_FORMAT_MESSAGE = "Enter an amount in dollars, like 29.99."
MESSAGES = {
    "name": f"The name must be {NAME_MIN} to {NAME_MAX} characters.",
    "price_cents": "The price must be from $0 to $999.99.",
    "minutes": f"Minutes must be a whole number from {MINUTES_MIN} to {MINUTES_MAX}.",
    "extension_price_cents": "Leave the extension price empty (the plan cannot be extended) or enter more than $0, "
                             "up to $999.99.",
    "max_photos": f"Photos must be a whole number from {PHOTOS_MIN} to {PHOTOS_MAX}.",
    "active": "Active is yes or no.",
}


def parse_dollars(text):
    """'29.99' (or '$29.99') → 2999 cents; ValueError with a message a person can act on."""
    text = (text or "").strip().removeprefix("$").strip()
    match = _AMOUNT.fullmatch(text)
    if match is None or not (match[2] or match[3]):
        raise ValueError(PRICE_FORMAT_MESSAGE)
    sign, whole, cents = match[1], match[2] or "0", match[3] or ""
    if sign:
        raise ValueError("An amount cannot be negative.")
    if len(cents) > 2:
        raise ValueError("Use at most 2 decimals (whole cents), like 29.99.")
    amount = int(Decimal(f"{whole}.{cents or 0}") * 100)
    if amount > PRICE_MAX_CENTS:
        raise ValueError("The most an amount can be is $999.99.")
    return amount


def _valid(field, value):
    if field == "name":
        return isinstance(value, str) and NAME_MIN <= len(value) <= NAME_MAX
    if field == "active":
        return isinstance(value, bool)
    if field == "extension_price_cents" and value is None:
        return True
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    low, high = {"price_cents": (0, PRICE_MAX_CENTS), "minutes": (MINUTES_MIN, MINUTES_MAX),
                 "extension_price_cents": (1, PRICE_MAX_CENTS), "max_photos": (PHOTOS_MIN, PHOTOS_MAX)}[field]
    return low <= value <= high


def all_plans():
    """Every plan, active or not, in the order customers see them."""
    return db.session.scalars(db.select(Plan).order_by(Plan.position, Plan.id)).all()


def update_plan(plan_id, values, actor, reason):
    """Change a plan's editable fields (audit "plan.update" with only what changed). Returns the
    audit entry, or None when nothing changed."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Say why the plan changes (kept in its history).", field="reason")
    if len(reason) > REASON_MAX:
        raise ValidationError(f"Keep the reason under {REASON_MAX} characters.", field="reason")
    values = {field: values[field] for field in EDITABLE if field in values}
    if isinstance(values.get("name"), str):
        values["name"] = " ".join(values["name"].split())
    for field, value in values.items():
        if not _valid(field, value):
            raise ValidationError(MESSAGES[field], field=field)
    plan = db.session.get(Plan, plan_id, with_for_update=True, populate_existing=True)
    if plan is None:
        raise NotFound("That plan does not exist.")
    before, after = audit.changed(audit.snapshot(plan, *values), values)
    if not after:
        return None
    for field, value in after.items():
        setattr(plan, field, value)
    db.session.flush()
    return audit.record(actor, "plan.update", "plan", plan.id, f"{plan.name}: {', '.join(after)} changed",
                        before=before, after=after, reason=reason)


def history(plan_id):
    """The plan's audit entries, newest first."""
    return db.session.scalars(db.select(AuditEntry).where(
        AuditEntry.target_type == "plan", AuditEntry.target_id == plan_id).order_by(AuditEntry.id.desc())).all()
