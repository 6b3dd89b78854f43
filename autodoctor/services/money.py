"""Money movements. Every amount that moves is written here as balanced ledger rows.

Accounts: `customer` is the customer's card (money in from it is negative, refunds to it
positive), `credit:<customer id>` the customer's account credit (positive: theirs to spend),
`escrow` what we hold, `platform` and `mechanic:<id>` what was earned. Escrow rows with a
payment id and no session id are that payment's own hold (an appointment paid before any
session, or account credit reserved for a checkout); rows with a session id belong to the
session."""
import uuid

from sqlalchemy import update

from autodoctor.extensions import db
from autodoctor.models import LedgerEntry, Payment, User

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
    session than the rest, (account, kind, amount, session id), or also of another payment,
    (account, kind, amount, session id, payment id). Legs of 0 cents are left out."""
    txn = str(uuid.uuid4())
    assert sum(leg[2] for leg in legs) == 0, "a ledger transaction must balance"
    for account, kind, amount, *own in legs:
        if not amount:
            continue
        db.session.add(LedgerEntry(txn_id=txn, session_id=own[0] if own else session_id,
                                   payment_id=own[1] if len(own) > 1 else payment_id,
                                   account=account, kind=kind, amount_cents=amount, memo=memo))
    db.session.flush()
    return txn


def _sum(*where):
    return db.session.scalar(
        db.select(db.func.coalesce(db.func.sum(LedgerEntry.amount_cents), 0)).where(*where)) or 0


def record_payment(payment):
    """The customer's card money arrives and is held in escrow for the session (or, for an
    appointment, for the payment)."""
    if payment.amount_cents:
        _post(payment.session_id, payment.id, f"Payment for {payment.description}",
              (CUSTOMER, "payment", -payment.amount_cents), (ESCROW, "payment", payment.amount_cents))


def escrow_balance(session_id):
    return _sum(LedgerEntry.session_id == session_id, LedgerEntry.account == ESCROW)


def card_refundable(payment_id):
    """What may still go back to the card of a payment: what the card paid, less what was
    already refunded to it."""
    return -_sum(LedgerEntry.payment_id == payment_id, LedgerEntry.account == CUSTOMER)


def card_refunded(payment_id):
    """What the ledger has refunded to the card of a payment so far."""
    return _sum(LedgerEntry.payment_id == payment_id, LedgerEntry.account == CUSTOMER, LedgerEntry.kind == "refund")


def _session_payments(session_id):
    """The payments whose money the session's escrow holds, newest first."""
    ids = db.select(LedgerEntry.payment_id).where(
        LedgerEntry.session_id == session_id, LedgerEntry.account == ESCROW, LedgerEntry.amount_cents > 0)
    return db.session.scalars(db.select(Payment).where(Payment.id.in_(ids)).order_by(Payment.id.desc())).all()


def refund_session(session, memo):
    """Return whatever is still held for the session to the customer, in one transaction:
    to the card of each payment (newest first) up to what that card paid and has not had
    back, the rest (paid from account credit) back to account credit. Returns the cents
    refunded to cards; `last_card_refunds` tells which payment gets what."""
    held = escrow_balance(session.id)
    if held <= 0:
        return 0
    legs, left = [], held
    paid = _session_payments(session.id)
    for payment in paid:
        take = min(left, card_refundable(payment.id))
        if take > 0:
            legs += [(ESCROW, "refund", -take, session.id, payment.id), (CUSTOMER, "refund", take, session.id, payment.id)]
            left -= take
    if left:
        from_credit = next((p.id for p in paid if p.credit_cents), None)
        legs += [(ESCROW, "credit", -left, session.id, from_credit),
                 (credit_account(session.customer_id), "credit", left, session.id, from_credit)]
    _post(session.id, None, memo, *legs)
    return held - left


def last_card_refunds(session_id):
    """[(payment id, cents)] of the session's latest refund to cards (to send to the provider)."""
    latest = db.session.scalar(db.select(LedgerEntry.txn_id).where(
        LedgerEntry.session_id == session_id, LedgerEntry.account == CUSTOMER, LedgerEntry.kind == "refund")
        .order_by(LedgerEntry.id.desc()).limit(1))
    if latest is None:
        return []
    return [(row.payment_id, row.amount_cents) for row in db.session.scalars(db.select(LedgerEntry).where(
        LedgerEntry.txn_id == latest, LedgerEntry.account == CUSTOMER).order_by(LedgerEntry.id))]


def settle_session(session):
    """Pay out a completed session: platform fee and mechanic earning, from escrow."""
    held = escrow_balance(session.id)
    if held <= 0:
        return
    from autodoctor.services import fees

    fee, earning = split(held, fees.percent_for(session))
    _post(session.id, None, f"Settlement of session #{session.id}",
          (ESCROW, "platform_fee", -fee), (PLATFORM, "platform_fee", fee),
          (ESCROW, "mechanic_earning", -earning), (mechanic_account(session.mechanic_id), "mechanic_earning", earning))


def session_refundable(session_id):
    """What may still go back to the customer for a session: what escrow holds plus what the
    platform and the mechanic earned from it (net of earlier refunds) — the customer's payments
    less what was already refunded."""
    return max(0, _sum(LedgerEntry.session_id == session_id, (LedgerEntry.account == ESCROW)
                       | (LedgerEntry.account == PLATFORM) | LedgerEntry.account.like("mechanic:%")))


def refund_completed(session, amount_cents, memo):
    """An admin refund of a finished session, in one balanced transaction: taken from what
    escrow still holds first, the rest back from the platform fee and the mechanic's earning in
    proportion to what each got (rounded half up for the platform, so it balances to the cent);
    to the card of each payment (newest first) up to what that card paid and has not had back,
    the rest as account credit. Returns (txn id, [(payment id, cents to its card)], cents to credit)."""
    assert 0 < amount_cents <= session_refundable(session.id), "a refund cannot exceed what was paid"
    from_escrow = min(amount_cents, max(escrow_balance(session.id), 0))
    rest = amount_cents - from_escrow
    platform = _sum(LedgerEntry.session_id == session.id, LedgerEntry.account == PLATFORM)
    earned = db.session.execute(db.select(LedgerEntry.account, db.func.sum(LedgerEntry.amount_cents)).where(
        LedgerEntry.session_id == session.id, LedgerEntry.account.like("mechanic:%"))
        .group_by(LedgerEntry.account).order_by(LedgerEntry.account)).all()
    mechanics = [(account, cents) for account, cents in earned if cents > 0]
    total = platform + sum(cents for _, cents in mechanics)
    legs = [(ESCROW, "refund", -from_escrow)]
    if rest:
        from_platform = min(platform, (rest * platform * 2 + total) // (total * 2)) if total else 0
        left = rest - from_platform
        for account, cents in mechanics:  # one mechanic, unless the session was reassigned after a payout
            take = min(left, cents)
            legs.append((account, "refund", -take))
            left -= take
        if left:  # rounding took a cent more than a mechanic had: the platform gives it
            from_platform += left
        legs.append((PLATFORM, "refund", -from_platform))
    card_parts, left = [], amount_cents
    paid = _session_payments(session.id)
    for payment in paid:
        take = min(left, max(card_refundable(payment.id), 0))
        if take > 0:
            legs.append((CUSTOMER, "refund", take, session.id, payment.id))
            card_parts.append((payment.id, take))
            left -= take
    if left:
        from_credit = next((p.id for p in paid if p.credit_cents), None)
        legs.append((credit_account(session.customer_id), "credit", left, session.id, from_credit))
    txn = _post(session.id, None, memo, *legs)
    return txn, card_parts, left


def session_entries(session_id):
    return db.session.scalars(
        db.select(LedgerEntry).where(LedgerEntry.session_id == session_id).order_by(LedgerEntry.id)).all()


def record_orphan_refund(payment, reason):
    """A payment that could not become a session (or a booking): the card part in and straight
    back out, and the account credit it held back to account credit."""
    if payment.amount_cents:
        _post(None, payment.id, "Payment received", (CUSTOMER, "payment", -payment.amount_cents),
              (ESCROW, "payment", payment.amount_cents))
        _post(None, payment.id, f"Refund: {reason}",
              (ESCROW, "refund", -payment.amount_cents), (CUSTOMER, "refund", payment.amount_cents))
    return_credit(payment, f"Credit back: {reason}")


def credit_account(customer_id):
    return f"credit:{customer_id}"


def held_for_payment(payment_id):
    """What escrow still holds of one payment itself (an appointment paid before any session,
    or account credit reserved for a checkout); once it moved to a session, the session holds it."""
    return _sum(LedgerEntry.payment_id == payment_id, LedgerEntry.account == ESCROW, LedgerEntry.session_id.is_(None))


def credit_balance(customer_id):
    """The customer's account credit in cents (from late cancellations and no-shows), less
    what open checkouts have reserved."""
    return _sum(LedgerEntry.account == credit_account(customer_id))


def grant_credit(customer_id, cents, memo):
    """Account credit the platform gives a customer (an admin's free session), in one balanced
    transaction; spent automatically at their next checkout."""
    assert cents > 0, "a credit grant must be positive"
    return _post(None, None, memo, (PLATFORM, "credit", -cents), (credit_account(customer_id), "credit", cents))


def lock_customer(customer_id):
    """Take the customer's credit one checkout at a time: a no-op UPDATE of the users row (a
    row lock on Postgres until commit, the write lock on SQLite)."""
    db.session.execute(update(User).where(User.id == customer_id).values(id=User.id),
                       execution_options={"synchronize_session": False})


def reserve_credit(payment, cents):
    """Account credit pays (part of) a checkout: it moves to the payment's hold in escrow, so
    another checkout cannot spend it too. Call under `lock_customer`."""
    if cents > 0:
        _post(None, payment.id, f"Account credit for {payment.description}",
              (credit_account(payment.customer_id), "credit", -cents), (ESCROW, "credit", cents))


def return_credit(payment, memo=None):
    """Whatever the payment's own hold still has goes back to account credit (a checkout that
    can no longer complete: only its reserved credit is held). Idempotent; returns the cents."""
    held = held_for_payment(payment.id)
    if held > 0:
        _post(None, payment.id, memo or f"Credit back: {payment.description} was not paid",
              (ESCROW, "credit", -held), (credit_account(payment.customer_id), "credit", held))
    return max(held, 0)


def move_to_session(payment, session_id):
    """An appointment's room opens (or a checkout paid partly with credit opens its session):
    what escrow holds of its payment now belongs to the session, settled (or refunded) with it
    like any other. Idempotent."""
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
    in-person visit that took place) it is the payout of the deposit. The refund goes to the
    card only up to what the card paid and has not had back; the rest of it (paid from
    account credit) becomes account credit. Returns (cents to the card, cents to credit)."""
    held = held_for_payment(payment.id)
    kept = held - refund_cents - credit_cents - fee_cents
    assert kept >= 0, "a cancellation cannot pay out more than was paid"
    to_card = min(refund_cents, max(card_refundable(payment.id), 0))
    to_credit = credit_cents + refund_cents - to_card
    from autodoctor.services import fees

    platform, earning = split(kept, fees.current_percent())
    legs = [(ESCROW, "refund", -to_card), (CUSTOMER, "refund", to_card),
            (ESCROW, "credit", -to_credit), (credit_account(payment.customer_id), "credit", to_credit),
            (ESCROW, "platform_fee", -(fee_cents + platform)), (PLATFORM, "platform_fee", fee_cents + platform),
            (ESCROW, "mechanic_earning", -earning), (mechanic_account(mechanic_id), "mechanic_earning", earning)]
    if any(leg[2] for leg in legs):
        _post(None, payment.id, memo or f"Cancellation of {payment.description}", *legs)
    return to_card, to_credit
