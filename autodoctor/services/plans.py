"""Plans: the priced session types and the only source of any amount charged."""
from autodoctor.extensions import db
from autodoctor.models import Plan
from autodoctor.services.errors import NotFound

EXTENSION_MINUTES = 15
IN_PERSON_DEPOSIT_CENTS = 1500  # paid when an in-person visit is booked; the balance after service
DEFAULT_PLANS = (
    # code, name, price_cents, minutes, kind, features, max_photos, +15 min price (None: no extension)
    ("free", "Free Session", 0, 5, "chat", "Text chat", 1, None),
    ("quick_advice", "Quick Advice", 499, 10, "chat", "Text chat + 1 photo", 1, 499),
    ("chat10", "Quick Chat", 999, 30, "chat", "Text chat + photos and media", 5, 499),
    ("video15", "Standard Video", 2999, 45, "video", "Video call + chat", 5, 999),
    ("diagnostic", "Full Diagnostic", 4999, 60, "diagnostic", "Video + chat + written report", 5, 1499),
)


def seed_plans():
    """Insert the default plans that are missing; never overwrite an admin's edits."""
    existing = {code for (code,) in db.session.query(Plan.code)}
    for position, (code, name, price, minutes, kind, features, max_photos, extension) in enumerate(DEFAULT_PLANS):
        if code not in existing:
            db.session.add(Plan(code=code, name=name, price_cents=price, minutes=minutes, kind=kind,
                                features=features, max_photos=max_photos, position=position,
                                extension_price_cents=extension))
    db.session.flush()


def list_plans():
    return db.session.scalars(db.select(Plan).where(Plan.active).order_by(Plan.position)).all()


def get_plan(code):
    plan = db.session.scalar(db.select(Plan).where(Plan.code == code, Plan.active))
    if plan is None:
        raise NotFound("That plan does not exist. Pick one from the pricing page.", field="plan")
    return plan


def format_price(cents):
    return "Free" if cents == 0 else f"${cents // 100}.{cents % 100:02d}"


def appointment_charge_cents(plan, kind):
    """What booking an appointment charges now: the plan's price online, the deposit in person."""
    return min(IN_PERSON_DEPOSIT_CENTS, plan.price_cents) if kind == "in_person" else plan.price_cents
