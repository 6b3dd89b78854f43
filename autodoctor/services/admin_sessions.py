"""What an admin sees of one session, and what an admin does to it.

`detail` gathers everything the session page shows (a few queries, whatever the size of the
transcript). The actions (force end, cancel, reassign, refund) each write one audit row with
the values before and after, in the same transaction as the change; the state transitions
themselves are services.lifecycle's guarded updates, the money services.money's balanced rows."""
from collections import OrderedDict
from dataclasses import dataclass, field

from sqlalchemy import update
from sqlalchemy.orm import joinedload, selectinload

from autodoctor.extensions import db
from autodoctor.models import (
    AuditEntry,
    ChatMessage,
    ConsultSession,
    LedgerEntry,
    Payment,
    RequestOffer,
    SessionEvent,
    SessionParticipant,
    SessionRequest,
    User,
)
from autodoctor.services import audit, lifecycle, money, timeline
from autodoctor.services.errors import Conflict, NotFound, ValidationError

SESSION_FIELDS = ("status", "mechanic_id", "ended_at", "end_reason")
REASON_MAX = 500


@dataclass
class Detail:
    session: ConsultSession
    participants: list
    requests: list
    events: list
    messages: list
    payments: list
    entries: list
    balances: "OrderedDict[str, int]"
    audit_entries: list
    files: list = field(default_factory=list)
    refundable: int = 0
    card_refundable: int = 0


def get(session_id):
    session = db.session.get(ConsultSession, session_id)
    if session is None:
        raise NotFound("That session does not exist.")
    return session


def session_payments(session):
    """The payments of a session: its checkout (by intake) and any extensions (by session id)."""
    return db.session.scalars(db.select(Payment).options(joinedload(Payment.plan)).where(
        (Payment.session_id == session.id) | (Payment.intake_id == session.intake_id)).order_by(Payment.id)).all()


def balances(entries):
    """{account: cents} over the session's ledger rows, escrow first."""
    totals = OrderedDict([(money.ESCROW, 0)])
    for entry in entries:
        totals[entry.account] = totals.get(entry.account, 0) + entry.amount_cents
    return totals


def detail(session_id):
    session = db.session.scalar(db.select(ConsultSession).options(
        joinedload(ConsultSession.customer), joinedload(ConsultSession.mechanic), joinedload(ConsultSession.plan),
        joinedload(ConsultSession.intake)).where(ConsultSession.id == session_id))
    if session is None:
        raise NotFound("That session does not exist.")
    participants = db.session.scalars(db.select(SessionParticipant).where(
        SessionParticipant.session_id == session_id).order_by(SessionParticipant.id)).all()
    requests = db.session.scalars(db.select(SessionRequest).options(
        joinedload(SessionRequest.mechanic),
        selectinload(SessionRequest.offers).joinedload(RequestOffer.mechanic)).where(
        SessionRequest.session_id == session_id).order_by(SessionRequest.id)).all()
    events = db.session.scalars(db.select(SessionEvent).options(joinedload(SessionEvent.actor)).where(
        SessionEvent.session_id == session_id).order_by(SessionEvent.id)).all()
    # The whole transcript in one query, senders and attachments joined in.
    messages = db.session.scalars(db.select(ChatMessage).options(
        joinedload(ChatMessage.sender), joinedload(ChatMessage.file)).where(
        ChatMessage.session_id == session_id).order_by(ChatMessage.id)).all()
    entries = money.session_entries(session_id)
    audit_entries = db.session.scalars(db.select(AuditEntry).options(joinedload(AuditEntry.actor)).where(
        AuditEntry.target_type == "session", AuditEntry.target_id == session_id).order_by(AuditEntry.id)).all()
    return Detail(session=session, participants=participants, requests=requests, events=events,
                  messages=messages, payments=session_payments(session), entries=entries,
                  balances=balances(entries), audit_entries=audit_entries,
                  files=list(session.intake.photos) if session.intake else [],
                  refundable=refundable(session), card_refundable=_card_refundable(session))


# --- refunds -----------------------------------------------------------------------------

def refunded_so_far(session_id):
    """Cents already given back to the customer for this session (card and account credit)."""
    return db.session.scalar(db.select(db.func.coalesce(db.func.sum(LedgerEntry.amount_cents), 0)).where(
        LedgerEntry.session_id == session_id, LedgerEntry.amount_cents > 0,
        (LedgerEntry.account == money.CUSTOMER) | (LedgerEntry.account.like("credit:%")))) or 0


def refundable(session):
    """The most an admin may still refund of a finished session: what was paid less what
    already went back (0 while it is pending, waiting or live: cancel or end it first)."""
    if session.status not in ("completed", "cancelled"):
        return 0
    return money.session_refundable(session.id)


def _lock(session_id):
    """One refund of a session at a time: a no-op UPDATE of its row (a row lock on Postgres
    until commit, the write lock on SQLite)."""
    db.session.execute(update(ConsultSession).where(ConsultSession.id == session_id).values(id=ConsultSession.id),
                       execution_options={"synchronize_session": False})


def _card_refundable(session):
    return sum(max(money.card_refundable(p.id), 0) for p in session_payments(session)
               if p.status in ("paid", "refunded"))


def _reason(reason):
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Give a reason.", field="reason")
    if len(reason) > REASON_MAX:
        raise ValidationError(f"Keep the reason under {REASON_MAX} characters.", field="reason")
    return reason


def _dollars(cents):
    return f"${cents / 100:,.2f}"


def refund(session_id, amount_cents, actor, reason):
    """Give back `amount_cents` of a finished session: from escrow first, then proportionally
    from the platform fee and the mechanic's earning; to the cards up to what they paid, the
    rest as account credit. Sends the card part to the provider after commit."""
    reason = _reason(reason)
    _lock(session_id)
    session = get(session_id)
    if session.status not in ("completed", "cancelled"):
        raise Conflict("Only a completed or cancelled session can be refunded here; cancel it instead.")
    if not isinstance(amount_cents, int) or amount_cents <= 0:
        raise ValidationError("Enter an amount greater than $0.00.", field="amount")
    most = refundable(session)
    if most <= 0:
        raise ValidationError("Nothing is left to refund for this session.", field="amount")
    if amount_cents > most:
        raise ValidationError(f"At most {_dollars(most)} can still be refunded.", field="amount")
    before = {"refunded_cents": refunded_so_far(session_id), "escrow_cents": money.escrow_balance(session_id)}
    txn, card_parts, to_credit = money.refund_completed(session, amount_cents, f"Refund by admin: {reason}")
    to_card = sum(cents for _, cents in card_parts)
    parts = [f"{_dollars(to_card)} to the card"] if to_card else []
    if to_credit:
        parts.append(f"{_dollars(to_credit)} as account credit")
    # The participants see the timeline: the reason stays in the audit log.
    timeline.record(session_id, "refunded", f"Refunded {_dollars(amount_cents)} by an admin ({' and '.join(parts)})",
                    actor_id=actor.id)
    from autodoctor.services import payments

    for payment_id, cents in card_parts:
        payment = db.session.get(Payment, payment_id)
        payments.send_refund_later(payment, cents, txn_id=txn)
        timeline.record(session_id, "refund_sent", f"Refund of {cents} cents sent to {payment.provider}")
    if not money.session_refundable(session_id):  # all of it went back: the payments read "refunded"
        for payment in session_payments(session):
            if payment.status == "paid":
                payment.status = "refunded"
    after = {"refunded_cents": refunded_so_far(session_id), "escrow_cents": money.escrow_balance(session_id)}
    audit.record(actor, "session.refund", "session", session_id,
                 f"Refunded {_dollars(amount_cents)} of session #{session_id}", before=before,
                 after=dict(after, amount_cents=amount_cents, to_card_cents=to_card, to_credit_cents=to_credit,
                            txn_id=txn), reason=reason)
    return amount_cents, to_card, to_credit


# --- status actions ----------------------------------------------------------------------

def force_end(session_id, actor, reason):
    """End a session now: a live one is completed and settled like a normal end; one still
    waiting for its participants is cancelled with a full refund."""
    reason = _reason(reason)
    session = get(session_id)
    before = dict(audit.snapshot(session, *SESSION_FIELDS), escrow_cents=money.escrow_balance(session_id))
    if session.status == "live":
        lifecycle.force_end(session_id, actor.id, reason)
        summary = f"Ended session #{session_id}"
    elif session.status == "waiting":
        lifecycle.cancel_by_admin(session_id, actor.id, reason)
        summary = f"Ended session #{session_id} before it started: cancelled with a refund"
    else:
        raise Conflict("Only a live or waiting session can be ended.")
    session = get(session_id)
    after = dict(audit.snapshot(session, *SESSION_FIELDS), escrow_cents=money.escrow_balance(session_id))
    audit.record(actor, "session.force_end", "session", session_id, summary, before=before, after=after,
                 reason=reason)
    return session


def cancel(session_id, actor, reason):
    """A pending or waiting session is cancelled with a full refund."""
    reason = _reason(reason)
    session = get(session_id)
    before = dict(audit.snapshot(session, *SESSION_FIELDS), escrow_cents=money.escrow_balance(session_id))
    if session.status not in ("pending", "waiting"):
        raise Conflict("Only a session that has not started can be cancelled.")
    lifecycle.cancel_by_admin(session_id, actor.id, reason)
    session = get(session_id)
    after = dict(audit.snapshot(session, *SESSION_FIELDS), escrow_cents=money.escrow_balance(session_id))
    audit.record(actor, "session.cancel", "session", session_id, f"Cancelled session #{session_id} with a refund",
                 before=before, after=after, reason=reason)
    return session


def eligible_mechanics(exclude_id=None):
    """Mechanics an admin may hand a session to: active, approved, not in a waiting/live session."""
    from autodoctor.models import MechanicProfile

    busy = db.select(ConsultSession.mechanic_id).where(ConsultSession.status.in_(("waiting", "live")),
                                                       ConsultSession.mechanic_id.is_not(None))
    query = db.select(User).join(MechanicProfile, MechanicProfile.user_id == User.id).where(
        User.role == "mechanic", User.is_active_account, MechanicProfile.approved.is_(True), User.id.not_in(busy))
    if exclude_id:
        query = query.where(User.id != exclude_id)
    return db.session.scalars(query.order_by(User.full_name, User.id)).all()


def reassign(session_id, mechanic_id, actor, reason):
    reason = _reason(reason)
    session = get(session_id)
    before = audit.snapshot(session, *SESSION_FIELDS)
    if session.status != "waiting":
        raise Conflict("Only a session waiting to start can be reassigned.")
    lifecycle.reassign(session_id, mechanic_id, actor.id, reason)
    session = get(session_id)
    audit.record(actor, "session.reassign", "session", session_id,
                 f"Reassigned session #{session_id} to {session.mechanic.full_name}",
                 before=before, after=audit.snapshot(session, *SESSION_FIELDS), reason=reason)
    return session
