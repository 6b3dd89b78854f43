"""Money movements. Every amount that moves is written here as balanced ledger rows."""
import uuid

from flask import current_app

from autodoctor.extensions import db
from autodoctor.models import LedgerEntry

ESCROW = "escrow"
CUSTOMER = "customer"
PLATFORM = "platform"


def mechanic_account(mechanic_id):
    return f"mechanic:{mechanic_id}"


def split(amount_cents, fee_percent):
    """Platform fee rounded half up to the cent; the mechanic gets exactly the rest."""
    fee = (amount_cents * fee_percent + 50) // 100
    return fee, amount_cents - fee


def _post(session_id, payment_id, memo, *legs):
    """One balanced transaction. A leg is (account, kind, amount) or, for a leg of another
    session than the rest, (account, kind, amount, session id)."""
    txn = str(uuid.uuid4())
    assert sum(leg[2] for leg in legs) == 0, "a ledger transaction must balance"
    for account, kind, amount, *own_session in legs:
        db.session.add(LedgerEntry(txn_id=txn, session_id=own_session[0] if own_session else session_id,
                                   payment_id=payment_id, account=account, kind=kind, amount_cents=amount, memo=memo))
    db.session.flush()
    return txn


def record_payment(payment):
    """The customer's money arrives and is held in escrow for the session."""
    if payment.amount_cents:
        _post(payment.session_id, payment.id, f"Payment for {payment.description}",
              (CUSTOMER, "payment", -payment.amount_cents), (ESCROW, "payment", payment.amount_cents))


def escrow_balance(session_id):
    return db.session.scalar(
        db.select(db.func.coalesce(db.func.sum(LedgerEntry.amount_cents), 0))
        .where(LedgerEntry.session_id == session_id, LedgerEntry.account == ESCROW)) or 0


def refund_session(session, memo):
    """Return whatever is still held for the session to the customer. Returns cents refunded."""
    held = escrow_balance(session.id)
    if held > 0:
        _post(session.id, None, memo, (ESCROW, "refund", -held), (CUSTOMER, "refund", held))
    return held


def settle_session(session):
    """Pay out a completed session: platform fee and mechanic earning, from escrow."""
    held = escrow_balance(session.id)
    if held <= 0:
        return
    fee, earning = split(held, current_app.config.get("PLATFORM_FEE_PERCENT", 20))
    _post(session.id, None, f"Settlement of session #{session.id}",
          (ESCROW, "platform_fee", -fee), (PLATFORM, "platform_fee", fee),
          (ESCROW, "mechanic_earning", -earning), (mechanic_account(session.mechanic_id), "mechanic_earning", earning))


def session_entries(session_id):
    return db.session.scalars(
        db.select(LedgerEntry).where(LedgerEntry.session_id == session_id).order_by(LedgerEntry.id)).all()


def record_orphan_refund(payment, reason):
    """A payment that could not become a session (or a booking): in and straight back out."""
    _post(None, payment.id, "Payment received", (CUSTOMER, "payment", -payment.amount_cents),
          (ESCROW, "payment", payment.amount_cents))
    _post(None, payment.id, f"Refund: {reason}",
          (ESCROW, "refund", -payment.amount_cents), (CUSTOMER, "refund", payment.amount_cents))


def credit_account(customer_id):
    return f"credit:{customer_id}"


def held_for_payment(payment_id):
    """What escrow still holds of one payment (appointments are paid before any session)."""
    return db.session.scalar(
        db.select(db.func.coalesce(db.func.sum(LedgerEntry.amount_cents), 0))
        .where(LedgerEntry.payment_id == payment_id, LedgerEntry.account == ESCROW)) or 0


def credit_balance(customer_id):
    """The customer's account credit in cents (from late cancellations and no-shows)."""
    return db.session.scalar(
        db.select(db.func.coalesce(db.func.sum(LedgerEntry.amount_cents), 0))
        .where(LedgerEntry.account == credit_account(customer_id))) or 0


def move_to_session(payment, session_id):
    """An appointment's room opens: what escrow holds of its payment now belongs to the session,
    settled (or refunded) with it like any other."""
    held = held_for_payment(payment.id)
    if held > 0:
        _post(None, payment.id, f"{payment.description}: moved to session #{session_id}",
              (ESCROW, "payment", -held), (ESCROW, "payment", held, session_id))
    return held


def settle_cancelled_appointment(payment, mechanic_id, refund_cents=0, credit_cents=0, fee_cents=0,
                                 memo=None):
    """Empty the escrow of a cancelled appointment's payment in one balanced transaction: a
    refund to the customer, account credit, a flat fee to the platform, and whatever is left
    split like a session (platform fee, the mechanic the rest). With nothing taken off (an
    in-person visit that took place) it is the payout of the deposit."""
    held = held_for_payment(payment.id)
    kept = held - refund_cents - credit_cents - fee_cents
    assert kept >= 0, "a cancellation cannot pay out more than was paid"
    platform, earning = split(kept, current_app.config.get("PLATFORM_FEE_PERCENT", 20))
    legs = [(ESCROW, "refund", -refund_cents), (CUSTOMER, "refund", refund_cents),
            (ESCROW, "credit", -credit_cents), (credit_account(payment.customer_id), "credit", credit_cents),
            (ESCROW, "platform_fee", -(fee_cents + platform)), (PLATFORM, "platform_fee", fee_cents + platform),
            (ESCROW, "mechanic_earning", -earning), (mechanic_account(mechanic_id), "mechanic_earning", earning)]
    _post(None, payment.id, memo or f"Cancellation of {payment.description}", *[leg for leg in legs if leg[2]])
