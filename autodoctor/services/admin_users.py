"""Admin user management: a person's whole picture for the console, and what an admin may do
to their account (suspend, ban, reactivate, verify the e-mail address, send a password reset,
internal notes, a free session as account credit).

Every action takes the acting admin (`services.audit.Actor`) and writes one audit row
"user.<verb>" with the values before and after, in the same transaction as the change.
Whoever calls these commits."""
from dataclasses import dataclass, field

from sqlalchemy import update
from sqlalchemy.orm import joinedload

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import AuditEntry, ConsultSession, MechanicProfile, Payment, Plan, User, UserNote
from autodoctor.realtime import ACCOUNT_CLOSED, emit
from autodoctor.services import accounts, audit, money, notifications, presence
from autodoctor.services.errors import Conflict, Forbidden, NotFound, ValidationError
from autodoctor.urls import url

RECENT = 20
NOTE_MAX = 2000
REASON_MAX = 300
STATUS_VERBS = {"suspended": "suspend", "banned": "ban", "active": "reactivate"}
STATUS_DONE = {"suspended": "Suspended", "banned": "Banned", "active": "Reactivated"}


@dataclass
class Overview:
    user: User
    credit_cents: int | None = None
    sessions: list = field(default_factory=list)
    payments: list = field(default_factory=list)
    presence: str | None = None
    notes: list = field(default_factory=list)
    audit: list = field(default_factory=list)


def get_user(user_id):
    """The user, or NotFound."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def overview(user_id):
    """Everything the admin user page shows, in a handful of bounded queries."""
    user = get_user(user_id)
    view = Overview(user=user)
    if user.role == "customer":
        view.credit_cents = money.credit_balance(user.id)
        view.sessions = _recent_sessions(ConsultSession.customer_id == user.id)
        view.payments = db.session.scalars(db.select(Payment).options(joinedload(Payment.plan))
                                           .where(Payment.customer_id == user.id)
                                           .order_by(Payment.id.desc()).limit(RECENT)).all()
    elif user.role == "mechanic":
        view.sessions = _recent_sessions(ConsultSession.mechanic_id == user.id)
        view.presence = presence.status(user.id) if user.mechanic_profile else None
    view.notes = db.session.scalars(db.select(UserNote).where(UserNote.user_id == user.id)
                                    .order_by(UserNote.id.desc()).limit(100)).all()
    view.audit = db.session.scalars(db.select(AuditEntry).where(AuditEntry.target_type == "user",
                                                                 AuditEntry.target_id == user.id)
                                    .order_by(AuditEntry.id.desc()).limit(50)).all()
    return view


def _recent_sessions(whose):
    return db.session.scalars(db.select(ConsultSession).options(
        joinedload(ConsultSession.plan), joinedload(ConsultSession.customer), joinedload(ConsultSession.mechanic))
        .where(whose).order_by(ConsultSession.id.desc()).limit(RECENT)).all()


def _reason(reason):
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Give a reason.", field="reason")
    if len(reason) > REASON_MAX:
        raise ValidationError(f"Keep the reason under {REASON_MAX} characters.", field="reason")
    return reason


def suspend(user_id, actor, reason):
    """Suspend the account (the reason is shown at login); logged out everywhere."""
    return _set_status(user_id, actor, "suspended", reason)


def ban(user_id, actor, reason):
    """Ban the account (the reason is shown at login); logged out everywhere."""
    return _set_status(user_id, actor, "banned", reason)


def reactivate(user_id, actor, reason):
    """Let a suspended or banned person log in again."""
    return _set_status(user_id, actor, "active", reason)


def _set_status(user_id, actor, to, reason):
    """Suspend, ban or reactivate: the status and its reason change and the auth version goes
    up (a guarded UPDATE), so every login of the person ends at their next request; their open
    streams end after commit, and a mechanic goes offline."""
    reason = _reason(reason)
    user = get_user(user_id)
    verb = STATUS_VERBS[to]
    if user.id == actor.id and to != "active":
        raise Forbidden("You cannot suspend or ban your own account.")
    if user.status == to:
        raise Conflict(f"This account is already {to}.")
    before = audit.snapshot(user, "status", "status_reason", "auth_version")
    result = db.session.execute(
        update(User).where(User.id == user.id, User.status == before["status"],
                           User.auth_version == before["auth_version"])
        .values(status=to, status_reason=None if to == "active" else reason, auth_version=User.auth_version + 1),
        execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        raise Conflict("This account changed meanwhile. Reload the page and try again.")
    db.session.expire(user)
    if to != "active":
        if db.session.scalar(db.select(MechanicProfile.user_id).where(MechanicProfile.user_id == user.id)):
            presence.set_online(user.id, False)
        emit(ACCOUNT_CLOSED, user_id=user.id)
    after = audit.snapshot(user, "status", "status_reason", "auth_version")
    audit.record(actor, f"user.{verb}", "user", user.id, f"{STATUS_DONE[to]} {user.full_name} ({user.email})",
                 before=before, after=after, reason=reason)
    return user


def verify_email(user_id, actor):
    """Mark the e-mail address verified. Returns False (nothing written) if it already was."""
    user = get_user(user_id)
    now = clock.now()
    result = db.session.execute(update(User).where(User.id == user.id, User.email_verified_at.is_(None))
                                .values(email_verified_at=now), execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        return False
    db.session.expire(user)
    audit.record(actor, "user.verify_email", "user", user.id, f"Verified the e-mail {user.email}",
                 before={"email_verified_at": None}, after={"email_verified_at": now})
    return True


def send_password_reset(user_id, actor):
    """E-mail the person a link to choose a new password (their current one keeps working until then)."""
    user = get_user(user_id)
    email = accounts.send_password_reset(user)
    audit.record(actor, "user.password_reset", "user", user.id, f"Sent a password reset link to {user.email}",
                 before={"reset_link_sent_to": None}, after={"reset_link_sent_to": user.email, "outbox_id": email.id})
    return email


def add_note(user_id, actor, body):
    """An internal note about the person (1 to 2000 characters), for admins only."""
    body = (body or "").strip()
    if not body:
        raise ValidationError("Write the note.", field="body")
    if len(body) > NOTE_MAX:
        raise ValidationError(f"Keep the note under {NOTE_MAX} characters.", field="body")
    user = get_user(user_id)
    note = UserNote(user_id=user.id, author_id=actor.id, body=body)
    db.session.add(note)
    db.session.flush()
    audit.record(actor, "user.note", "user", user.id, f"Added a note about {user.full_name}",
                 before=None, after={"note_id": note.id, "body": body})
    return note


def free_session_plans():
    """The plans a free session may be granted for: active and paid."""
    return db.session.scalars(db.select(Plan).where(Plan.active, Plan.price_cents > 0).order_by(Plan.position)).all()


def grant_free_session(user_id, actor, plan_code, reason):
    """A free session for a customer: account credit worth that plan's price, spent
    automatically at their next checkout; they get an in-app notice and an e-mail."""
    reason = _reason(reason)
    user = get_user(user_id)
    if user.role != "customer":
        raise ValidationError("Only customers can be given a free session.")
    plan = db.session.scalar(db.select(Plan).where(Plan.code == plan_code, Plan.active))
    if plan is None or plan.price_cents <= 0:
        raise ValidationError("Choose a paid plan.", field="plan_code")
    money.lock_customer(user.id)  # one credit change at a time per customer
    before = {"credit_cents": money.credit_balance(user.id)}
    cents = plan.price_cents
    txn = money.grant_credit(user.id, cents, f"Free {plan.name} from AutoDoctor")
    after = {"credit_cents": money.credit_balance(user.id), "plan": plan.code, "txn_id": txn}
    text = (f"You have a free {plan.name}: {dollars(cents)} of account credit, applied automatically at "
            f"checkout.")
    link = url("customer.intake_new")
    notifications.notify(user.id, "credit_granted", text, link=link)
    notifications.queue_email(user.email, f"You have a free {plan.name}", "emails/credit_granted.txt",
                              customer=user, plan=plan, cents=cents, link=url("customer.intake_new", _external=True))
    audit.record(actor, "user.grant_free_session", "user", user.id,
                 f"Granted a free {plan.name} ({dollars(cents)} credit) to {user.full_name}",
                 before=before, after=after, reason=reason)
    return cents


def dollars(cents):
    """Cents as dollars: 999 -> "$9.99"."""
    return f"${cents // 100}.{cents % 100:02d}"
