"""Checkout and fulfilment. Amounts always come from the plan; fulfilment is one idempotent
function reached from the webhook and from the customer's return to the success page.

Account credit is applied automatically at checkout (sessions and appointments): it is
reserved when the payment is created (taken one checkout at a time per customer, so two tabs
never spend it twice), the card pays the rest, and credit that covers everything needs no card
at all. A checkout that can no longer complete gives its credit back."""
import logging
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from autodoctor import clock, jobs
from autodoctor.extensions import db
from autodoctor.integrations import stripe_gateway
from autodoctor.models import Appointment, ConsultSession, LedgerEntry, Payment, StripeEvent
from autodoctor.services import lifecycle, money, plans, timeline
from autodoctor.services.errors import Conflict, NotFound

log = logging.getLogger(__name__)
FULFIL_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
EXPIRED_EVENT = "checkout.session.expired"
OPEN_CREDIT_FOR = timedelta(hours=24)  # an unpaid checkout keeps its reserved credit this long (as Stripe)
CREDIT_GONE = ("Your account credit was used by another checkout before this payment arrived, "
               "so the payment was refunded in full. Please check out again.")


def _card_provider():
    return "stripe" if stripe_gateway.live_mode() else "test_checkout"


def _apply_credit(payment):
    """Pay what account credit covers (all of it if it can), reserved for this payment under
    the customer's lock; the card is charged the rest."""
    money.lock_customer(payment.customer_id)
    used = min(money.credit_balance(payment.customer_id), payment.amount_cents)
    if used <= 0:
        return
    payment.amount_cents, payment.credit_cents = payment.amount_cents - used, used
    if not payment.amount_cents:
        payment.provider = "credit"
    db.session.flush()
    money.reserve_credit(payment, used)


def start_checkout(intake, success_url_for, cancel_url):
    """Create the payment for an intake. Returns (checkout URL, None), or (None, session) for
    a free plan or one paid entirely from account credit. `success_url_for(payment_id)` builds
    the return address."""
    if lifecycle.active_session_for_customer(intake.customer_id):
        raise Conflict("You already have an active session. Finish or cancel it before starting another.")
    plan = intake.plan
    payment = Payment(customer_id=intake.customer_id, intake=intake, plan=plan, amount_cents=plan.price_cents,
                      currency="usd", provider="free" if plan.is_free else _card_provider())
    db.session.add(payment)
    db.session.flush()
    if plan.is_free:
        payment.checkout_id = f"free_{payment.id}"
        return None, fulfil_payment(payment.id)
    _apply_credit(payment)
    if not payment.amount_cents:
        payment.checkout_id = f"credit_{payment.id}"
        return None, fulfil_payment(payment.id)
    url, payment.checkout_id = stripe_gateway.create_checkout(payment, success_url_for(payment.id), cancel_url)
    return url, None


def start_extension_checkout(session_id, customer_id, success_url_for, cancel_url):
    """Checkout for +15 minutes in a live session, priced from the plan. Returns the URL."""
    session = db.session.get(ConsultSession, session_id)
    if session is None or session.customer_id != customer_id:
        raise NotFound("That session does not exist.")
    if not session.plan.can_extend:
        raise Conflict(f"The {session.plan.name} plan cannot be extended.")
    if session.status != "live":
        raise Conflict("Time can be added only while the session is live.")
    payment = Payment(purpose="extension", customer_id=customer_id, session_id=session.id, plan=session.plan,
                      minutes=plans.EXTENSION_MINUTES, amount_cents=session.plan.extension_price_cents,
                      currency="usd", provider=_card_provider())
    db.session.add(payment)
    db.session.flush()
    url, payment.checkout_id = stripe_gateway.create_checkout(payment, success_url_for(payment.id), cancel_url)
    return url


def start_appointment_checkout(appointment, success_url_for, cancel_url):
    """Checkout for a held appointment: the plan's price online, the deposit in person, less
    account credit. Returns the URL, or None when nothing is due (a free plan, or account
    credit covers it): then it is booked at once."""
    from autodoctor.services import appointments

    amount = plans.appointment_charge_cents(appointment.plan, appointment.kind)
    payment = Payment(purpose="appointment", customer_id=appointment.customer_id, appointment=appointment,
                      plan=appointment.plan, amount_cents=amount, currency="usd",
                      provider="free" if not amount else _card_provider())
    db.session.add(payment)
    db.session.flush()
    if not amount:
        payment.checkout_id, payment.status, payment.paid_at = f"free_{payment.id}", "paid", clock.now()
        appointments.confirm(appointment.id)
        return None
    _apply_credit(payment)
    if not payment.amount_cents:
        payment.checkout_id = f"credit_{payment.id}"
        if fulfil_payment(payment.id) is None:  # the hold was lost meanwhile: nothing happened
            raise Conflict(appointments.TAKEN)
        return None
    url, payment.checkout_id = stripe_gateway.create_checkout(payment, success_url_for(payment.id), cancel_url)
    return url


def get_payment(payment_id, customer_id):
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.customer_id != customer_id:
        raise NotFound("That checkout does not exist.")
    return payment


def fulfil_payment(payment_id, payment_intent_id=None):
    """Mark the payment paid and open the session, once. Returns the session (or None when
    this payment was already fulfilled by an earlier call)."""
    now = clock.now()
    changed = db.session.execute(
        update(Payment).where(Payment.id == payment_id, Payment.status == "open")
        .values(status="paid", paid_at=now, payment_intent_id=payment_intent_id, failure_message=None),
        execution_options={"synchronize_session": False}).rowcount
    if not changed:
        return None
    db.session.expire_all()
    payment = db.session.get(Payment, payment_id)
    if not _credit_still_held(payment):
        payment.status = "refunded"
        payment.failure_message = CREDIT_GONE
        refund_with_provider(None, payment.amount_cents, payment=payment,
                             reason="the account credit for this checkout had been spent meanwhile")
        log.warning("payment %s refunded: its account credit is gone", payment_id)
        return None
    if payment.purpose == "extension":
        return _fulfil_extension(payment)
    if payment.purpose == "appointment":
        return _fulfil_appointment(payment)
    if lifecycle.active_session_for_customer(payment.customer_id):
        # Paid twice from two tabs: the second payment goes straight back.
        payment.status = "refunded"
        refund_with_provider(None, payment.amount_cents, payment=payment)
        log.warning("payment %s refunded: customer already has an active session", payment_id)
        return None
    session = lifecycle.open_session(payment)
    payment.session_id = session.id
    db.session.flush()
    money.record_payment(payment)
    money.move_to_session(payment, session.id)  # the account credit it reserved
    from autodoctor.services import notifications

    notifications.payment_received(payment)
    return session


def _credit_still_held(payment):
    """A payment is being fulfilled: the account credit it counts on must be in its hold. If it
    was given back meanwhile (expired hold, expired checkout), take it again when the customer
    still has it. False when they do not (then the payment cannot complete)."""
    missing = payment.credit_cents - money.held_for_payment(payment.id)
    if missing <= 0:
        return True
    money.lock_customer(payment.customer_id)
    if money.credit_balance(payment.customer_id) < missing:
        return False
    money.reserve_credit(payment, missing)
    return True


def release_credit(payment_id, now=None):
    """A checkout that can no longer complete gives its reserved account credit back. Guarded
    by the payment row (a concurrent fulfilment either ran first, and then the payment is no
    longer open, or runs after and takes the credit again). Idempotent; returns the cents."""
    if not db.session.execute(
            update(Payment).where(Payment.id == payment_id, Payment.status == "open").values(id=Payment.id),
            execution_options={"synchronize_session": False}).rowcount:
        return 0
    payment = db.session.get(Payment, payment_id)
    return money.return_credit(payment, f"Credit back: the checkout for {payment.description} was not completed")


def credit_to_release(now):
    """Ids of open payments still holding account credit that can no longer complete: their
    appointment hold expired, or they are older than 24 hours (for the sweep)."""
    holding = db.select(LedgerEntry.payment_id).where(
        LedgerEntry.account == money.ESCROW, LedgerEntry.session_id.is_(None), LedgerEntry.payment_id.is_not(None)
    ).group_by(LedgerEntry.payment_id).having(db.func.sum(LedgerEntry.amount_cents) > 0)
    expired = db.select(Appointment.id).where(Appointment.status == "expired")
    return db.select(Payment.id).where(
        Payment.status == "open", Payment.credit_cents > 0, Payment.id.in_(holding),
        (Payment.created_at <= now - OPEN_CREDIT_FOR) | Payment.appointment_id.in_(expired))


def _fulfil_extension(payment):
    """Paid time joins the session's escrow and its clock; if the session ended meanwhile,
    the money goes straight back."""
    from autodoctor.services import notifications

    money.record_payment(payment)
    price = plans.format_price(payment.amount_cents)
    if lifecycle.extend_session(payment.session_id, payment.minutes, f"+{payment.minutes} minutes bought ({price})"):
        notifications.payment_received(payment)
        return payment.session
    payment.status = "refunded"
    refunded = money.refund_session(payment.session, "Refund: the session ended before the extra time was paid")
    timeline.record(payment.session_id, "refunded", f"Extension refunded ({refunded} cents): the session had ended")
    refund_with_provider(payment.session_id, refunded, payment=payment)
    return None


def _fulfil_appointment(payment):
    """Paid: the held time becomes a booking (held again first if the 15 minutes ran out while
    the time is still free). If someone else took the time meanwhile, the money goes straight
    back. Returns the appointment, or None."""
    from autodoctor.services import appointments, notifications
    from autodoctor.services.errors import ServiceError

    try:
        appointment = appointments.confirm(payment.appointment_id, rehold=True)
    except ServiceError:
        payment.status = "refunded"
        refund_with_provider(None, payment.amount_cents, payment=payment,
                             reason="the time was taken before the payment arrived")
        log.warning("appointment payment %s refunded: the time was taken", payment.id)
        return None
    money.record_payment(payment)
    notifications.payment_received(payment)
    notifications.appointment_booked(appointment)
    return appointment


def handle_stripe_event(event):
    """Record the event id and act on it in the caller's transaction. A replay, even a
    concurrent one, hits the primary key and does nothing."""
    try:
        db.session.add(StripeEvent(id=event["id"], type=event["type"]))
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return "duplicate"
    if event["type"] not in (*FULFIL_EVENTS, EXPIRED_EVENT):
        return "ignored"
    data = event.get("data")
    checkout = data.get("object") if isinstance(data, dict) else None
    if not isinstance(checkout, dict):
        return "ignored"
    if event["type"] == EXPIRED_EVENT:
        return _expire_checkout(checkout)
    return "fulfilled" if _fulfil_checkout(checkout) else "no-op"


def _expire_checkout(checkout):
    """Stripe gave up on a checkout: nobody can pay it any more, so its account credit goes
    back. A checkout that was paid meanwhile is not touched."""
    payment = _payment_for(checkout)
    if payment is None or checkout.get("status") == "complete":
        return "no-op"
    return "credit released" if release_credit(payment.id) else "no-op"


def _payment_for(checkout):
    """The payment a Stripe checkout object is for, or None when it matches none of ours."""
    metadata = checkout.get("metadata")
    reference = checkout.get("client_reference_id") or (
        metadata.get("payment_id") if isinstance(metadata, dict) else None)
    payment = db.session.get(Payment, int(reference)) if str(reference or "").isdigit() else None
    if payment is None or payment.checkout_id != checkout.get("id"):
        log.warning("checkout %s matches no payment", checkout.get("id"))
        return None
    return payment


def _fulfil_checkout(checkout):
    if checkout.get("payment_status") != "paid":
        return None
    payment = _payment_for(checkout)
    if payment is None:
        return None
    if checkout.get("amount_total") != payment.amount_cents or checkout.get("currency") != payment.currency:
        log.error("checkout %s amount %s %s differs from payment %s", checkout.get("id"),
                  checkout.get("amount_total"), checkout.get("currency"), payment.id)
        return None
    return fulfil_payment(payment.id, checkout.get("payment_intent"))


def confirm_return(payment, checkout_session_id=None):
    """The customer is back from checkout: in live mode ask Stripe, and fulfil if paid."""
    if payment.status == "open" and stripe_gateway.live_mode() and checkout_session_id == payment.checkout_id:
        _fulfil_checkout(stripe_gateway.retrieve_checkout(checkout_session_id))
    return payment


def pay_with_test_card(payment, card_number):
    """The built-in test checkout. Declined cards change nothing but the message shown."""
    if payment.status != "open" or payment.provider != "test_checkout":
        raise Conflict("This checkout is already closed.")
    number = "".join(ch for ch in card_number or "" if ch.isdigit())
    if number not in stripe_gateway.TEST_CARDS:
        raise Conflict("Use one of the test cards shown on this page.")
    declined = stripe_gateway.TEST_CARDS[number]
    if declined:
        payment.failure_message = declined
        return False
    event = stripe_gateway.build_checkout_completed_event(payment)
    db.session.commit()  # the webhook handler runs in its own transaction
    status = stripe_gateway.deliver_test_event(event)
    if status != 200:
        raise Conflict("The payment could not be confirmed. Please try again.")
    return True


def refund_with_provider(session_id, amount_cents, payment=None, reason="customer already had an active session"):
    """Send a refund back through the payment provider. For a session, the card part of the
    refund `money.refund_session` just recorded goes to each payment's card. Without a session
    (`payment` never became one) its money is recorded in and straight back out first: the
    card part to the card, its account credit back to account credit."""
    if session_id is None:
        if payment is not None:
            money.record_orphan_refund(payment, reason)
            send_refund_later(payment, amount_cents)
        return
    if not amount_cents:
        return
    for payment_id, cents in money.last_card_refunds(session_id):
        paid_by = db.session.get(Payment, payment_id)
        send_refund_later(paid_by, cents)
        timeline.record(session_id, "refund_sent", f"Refund of {cents} cents sent to {paid_by.provider}")


def send_refund_later(payment, amount_cents, txn_id=None):
    """A refund already in the ledger goes back through Stripe by a job (nothing to send for
    the built-in test checkout or account credit). Never more than the ledger refunded to
    this payment's card: a refund beyond it went back to account credit. `txn_id` (the
    ledger transaction of the refund) makes the provider's idempotency key unique per refund,
    so two partial refunds of the same amount are two refunds."""
    amount_cents = min(amount_cents or 0, money.card_refunded(payment.id))
    if amount_cents > 0 and payment.provider == "stripe":
        from autodoctor.jobs.payments import refund_payment_job

        if txn_id:
            jobs.enqueue(refund_payment_job, payment.id, amount_cents, txn_id)
        else:
            jobs.enqueue(refund_payment_job, payment.id, amount_cents)


def send_refund(payment_id, amount_cents, txn_id=None):
    payment = db.session.get(Payment, payment_id)
    key = f"refund-{txn_id}-{payment_id}" if txn_id else f"refund-payment-{payment_id}-{amount_cents}"
    stripe_gateway.refund(payment.payment_intent_id, amount_cents, key=key)
