"""Checkout and fulfilment. Amounts always come from the plan; fulfilment is one idempotent
function reached from the webhook and from the customer's return to the success page."""
import logging

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from autodoctor import clock, jobs
from autodoctor.extensions import db
from autodoctor.integrations import stripe_gateway
from autodoctor.models import ConsultSession, Payment, StripeEvent
from autodoctor.services import lifecycle, money, plans, timeline
from autodoctor.services.errors import Conflict, NotFound

log = logging.getLogger(__name__)
FULFIL_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")


def start_checkout(intake, success_url_for, cancel_url):
    """Create the payment for an intake. Returns (checkout URL, None), or (None, session) for
    a free plan. `success_url_for(payment_id)` builds the return address."""
    if lifecycle.active_session_for_customer(intake.customer_id):
        raise Conflict("You already have an active session. Finish or cancel it before starting another.")
    plan = intake.plan
    payment = Payment(customer_id=intake.customer_id, intake=intake, plan=plan, amount_cents=plan.price_cents,
                      currency="usd", provider="free" if plan.is_free else
                      ("stripe" if stripe_gateway.live_mode() else "test_checkout"))
    db.session.add(payment)
    db.session.flush()
    if plan.is_free:
        payment.checkout_id = f"free_{payment.id}"
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
                      currency="usd", provider="stripe" if stripe_gateway.live_mode() else "test_checkout")
    db.session.add(payment)
    db.session.flush()
    url, payment.checkout_id = stripe_gateway.create_checkout(payment, success_url_for(payment.id), cancel_url)
    return url


def start_appointment_checkout(appointment, success_url_for, cancel_url):
    """Checkout for a held appointment: the plan's price online, the deposit in person.
    Returns the URL, or None when nothing is due (a free plan): then it is booked at once."""
    from autodoctor.services import appointments

    amount = plans.appointment_charge_cents(appointment.plan, appointment.kind)
    payment = Payment(purpose="appointment", customer_id=appointment.customer_id, appointment=appointment,
                      plan=appointment.plan, amount_cents=amount, currency="usd",
                      provider="free" if not amount else ("stripe" if stripe_gateway.live_mode() else "test_checkout"))
    db.session.add(payment)
    db.session.flush()
    if not amount:
        payment.checkout_id, payment.status, payment.paid_at = f"free_{payment.id}", "paid", clock.now()
        appointments.confirm(appointment.id)
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
    from autodoctor.services import notifications

    notifications.payment_received(payment)
    return session


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
    if event["type"] not in FULFIL_EVENTS:
        return "ignored"
    data = event.get("data")
    checkout = data.get("object") if isinstance(data, dict) else None
    if not isinstance(checkout, dict):
        return "ignored"
    return "fulfilled" if _fulfil_checkout(checkout) else "no-op"


def _fulfil_checkout(checkout):
    if checkout.get("payment_status") != "paid":
        return None
    metadata = checkout.get("metadata")
    reference = checkout.get("client_reference_id") or (
        metadata.get("payment_id") if isinstance(metadata, dict) else None)
    payment = db.session.get(Payment, int(reference)) if str(reference or "").isdigit() else None
    if payment is None or payment.checkout_id != checkout.get("id"):
        log.warning("checkout %s matches no payment", checkout.get("id"))
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
    """Send a refund recorded in the ledger back through the payment provider."""
    if payment is None:
        payment = db.session.scalar(db.select(Payment).where(Payment.session_id == session_id))
    if payment is None or not amount_cents:
        return
    if session_id is None:  # never became a session: record the money in and straight out
        money.record_orphan_refund(payment, reason)
    send_refund_later(payment, amount_cents)
    if session_id:
        timeline.record(session_id, "refund_sent", f"Refund of {amount_cents} cents sent to {payment.provider}")


def send_refund_later(payment, amount_cents):
    """A refund already in the ledger goes back through Stripe by a job (nothing to send for
    the built-in test checkout)."""
    if payment.provider == "stripe":
        from autodoctor.jobs.payments import refund_payment_job

        jobs.enqueue(refund_payment_job, payment.id, amount_cents)


def send_refund(payment_id, amount_cents):
    payment = db.session.get(Payment, payment_id)
    stripe_gateway.refund(payment.payment_intent_id, amount_cents, key=f"refund-payment-{payment_id}-{amount_cents}")
