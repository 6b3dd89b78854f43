"""The admin's cleanup: a preview of what the sweep's cleanup steps would change right now,
and applying exactly that preview (services.sweep holds the steps and their transitions).

The preview carries a token of every id it lists; applying recomputes the preview and refuses
when the token no longer matches, so an admin never applies a set they did not see."""
import hashlib
import json
from dataclasses import dataclass, field

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import Appointment, ConsultSession, Payment, SessionRequest, WaitlistEntry
from autodoctor.services import audit, money, sweep
from autodoctor.services.errors import Conflict, ValidationError

SHOWN = 20  # items listed per group; the count covers them all

# What applying does to each group, in words.
OUTCOMES = {
    "holds": "Released: the time is free to book again.",
    "expire": "Expired and refunded in full; the customer is told.",
    "unattended": "Moved to the Unattended queue for an admin to assign.",
    "no_show": "Request cancelled, the mechanic freed, the customer refunded in full.",
    "orphaned": "Cancelled and refunded in full.",
    "ended": "Completed at the time limit; the mechanic is paid.",
    "credit": "The reserved account credit goes back to the customer.",
    "waitlist": "The place expires; the customer gets a notice.",
}


@dataclass
class Item:
    id: int
    title: str
    detail: str
    outcome: str
    session_id: int | None = None


@dataclass
class Group:
    key: str
    label: str
    outcome: str
    ids: list
    items: list = field(default_factory=list)

    @property
    def count(self):
        return len(self.ids)

    @property
    def capped(self):
        """More may be overdue than one pass takes (the next pass takes the rest)."""
        return len(self.ids) >= sweep.BATCH


class StalePreview(Conflict):
    """The overdue set changed since the admin's preview; `groups` is the new preview."""

    def __init__(self, groups):
        super().__init__("What needs cleaning up changed since your preview. Here is the new preview: "
                         "check it and apply again.")
        self.groups = groups


def _dollars(cents):
    return f"${cents // 100:,}.{cents % 100:02d}"


def _refund(session_id, verb):
    held = money.escrow_balance(session_id)
    return f"{verb}, {_dollars(held)} refunded" if held > 0 else f"{verb} (nothing to refund)"


def _request_item(key, request_id):
    request = db.session.get(SessionRequest, request_id)
    session = request.session
    detail = f"{request.customer.email} · requested {request.created_at:%b %d %H:%M} UTC"
    if request.extended_until:
        detail += f" · extended until {request.extended_until:%b %d %H:%M} UTC"
    if key == "expire":
        outcome = _refund(session.id, "expired")
    elif key == "unattended":
        outcome = "to the Unattended queue"
    else:
        mechanic = request.mechanic.full_name if request.mechanic else "the mechanic"
        detail += f" · accepted by {mechanic} {request.accepted_at:%H:%M} UTC"
        outcome = _refund(session.id, f"cancelled, {mechanic} freed")
    return Item(request_id, f"Session #{session.id} · {session.plan.name}", detail, outcome, session.id)


def _session_item(key, session_id):
    session = db.session.get(ConsultSession, session_id)
    mechanic = session.mechanic.full_name if session.mechanic else "no mechanic"
    if key == "orphaned":
        detail = f"{session.customer.email} · {mechanic} · waiting since {session.accepted_at:%b %d %H:%M} UTC"
        outcome = _refund(session.id, "cancelled")
    else:
        detail = f"{session.customer.email} · {mechanic} · ended at {session.ends_at:%b %d %H:%M} UTC"
        outcome = "completed, the mechanic paid"
    return Item(session_id, f"Session #{session.id} · {session.plan.name}", detail, outcome, session.id)


def _hold_item(key, appointment_id):
    appointment = db.session.get(Appointment, appointment_id)
    return Item(appointment_id, f"Appointment #{appointment.id} · {appointment.plan.name}",
                f"{appointment.customer.email} · {appointment.mechanic.full_name} · "
                f"{appointment.starts_at:%b %d %H:%M} UTC · held until {appointment.hold_expires_at:%H:%M} UTC",
                "released", appointment.session_id)


def _credit_item(key, payment_id):
    payment = db.session.get(Payment, payment_id)
    held = money.held_for_payment(payment.id)
    return Item(payment_id, f"Payment #{payment.id} · {payment.description}",
                f"{payment.customer.email} · started {payment.created_at:%b %d %H:%M} UTC",
                f"{_dollars(held)} credit returned" if held > 0 else "nothing held any more", payment.session_id)


def _waitlist_item(key, entry_id):
    entry = db.session.get(WaitlistEntry, entry_id)
    return Item(entry_id, f"Waitlist place #{entry.id}",
                f"{entry.customer.email} · joined {entry.created_at:%b %d %H:%M} UTC", "expired, customer told")


_DESCRIBE = {"request": _request_item, "session": _session_item, "appointment": _hold_item,
             "payment": _credit_item, "waitlist": _waitlist_item}


def preview(now=None):
    """Every cleanup group with its ids (all of them, up to a pass) and its first items described."""
    now = now or clock.now()
    groups = []
    for step in sweep.CLEANUP_STEPS:
        ids = sweep.ids_for(step, now)
        describe = _DESCRIBE[step.target]
        groups.append(Group(step.key, step.label, OUTCOMES[step.key], ids,
                            [describe(step.key, item_id) for item_id in ids[:SHOWN]]))
    return groups


def token(groups):
    """A fingerprint of every id in a preview."""
    payload = json.dumps({group.key: group.ids for group in groups}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def apply(expected_token, actor, now=None):
    """Apply the preview the admin saw (identified by its token): the sweep's transitions, one
    commit each, then the audit row "maintenance.cleanup" (the caller commits it). Returns the
    per-group results of sweep.apply. StalePreview when the overdue set changed meanwhile."""
    now = now or clock.now()
    groups = preview(now)
    if token(groups) != expected_token:
        raise StalePreview(groups)
    if not any(group.ids for group in groups):
        raise ValidationError("Nothing needs cleaning up right now.", field="confirm")
    planned = {group.key: group.ids for group in groups if group.ids}
    results = sweep.apply(planned, now)
    after = {key: result for key, result in results.items() if key in planned}
    done = sum(len(result["done"]) for result in after.values())
    audit.record(actor, "maintenance.cleanup", "maintenance", None,
                 f"Cleanup: {done} of {sum(len(ids) for ids in planned.values())} changed",
                 before=planned, after=after)
    return after
