"""The only module that talks to Stripe. Without STRIPE_SECRET_KEY, checkouts go to the
built-in test checkout, which produces Stripe-shaped events signed with the same webhook
secret and delivered to the same /webhooks/stripe handler."""
import json
import time
import uuid

import stripe
from flask import current_app

from autodoctor.urls import url

TEST_CARDS = {
    "4242424242424242": None,
    "4000000000000002": "Your card was declined.",
    "4000000000009995": "Your card has insufficient funds.",
}


class SignatureError(Exception):
    pass


def live_mode():
    return bool(current_app.config.get("STRIPE_SECRET_KEY"))


def _client():
    base = current_app.config.get("STRIPE_API_BASE")
    return stripe.StripeClient(current_app.config["STRIPE_SECRET_KEY"], base_addresses={"api": base} if base else {},
                                max_network_retries=2)


def create_checkout(payment, success_url, cancel_url):
    """Return the URL the customer pays at, and the provider's checkout id. The card is
    charged `amount_cents`: what account credit (`credit_cents`) did not cover."""
    if not live_mode():
        return url("customer.checkout_test_show", payment_id=payment.id), f"cs_test_builtin_{payment.id}_{uuid.uuid4().hex[:12]}"
    product = {"name": f"AutoDoctor — {payment.description}"}
    if payment.credit_cents:
        product["description"] = (f"Price {_money(payment.amount_cents + payment.credit_cents)}, "
                                  f"account credit −{_money(payment.credit_cents)}: "
                                  f"{_money(payment.amount_cents)} to pay by card.")
    session = _client().v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "client_reference_id": str(payment.id),
            "customer_email": payment.customer.email,
            "line_items": [{"quantity": 1, "price_data": {
                "currency": payment.currency, "unit_amount": payment.amount_cents, "product_data": product}}],
            "metadata": {"payment_id": str(payment.id)},
            "success_url": success_url + "?checkout_session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": cancel_url,
        },
        options={"idempotency_key": f"checkout-payment-{payment.id}"},
    )
    return session.url, session.id


def _money(cents):
    return f"${cents // 100}.{cents % 100:02d}"


def retrieve_checkout(checkout_id):
    """Stripe's view of a checkout session as a plain dict (live mode only)."""
    return _client().v1.checkout.sessions.retrieve(checkout_id).to_dict()


def refund(payment_intent_id, amount_cents, key):
    if live_mode() and payment_intent_id:
        _client().v1.refunds.create(params={"payment_intent": payment_intent_id, "amount": amount_cents},
                                    options={"idempotency_key": key})


def parse_webhook(payload: bytes, signature: str):
    """Verify the Stripe-Signature header against the raw body; return the event as a dict."""
    secret = current_app.config["STRIPE_WEBHOOK_SECRET"]
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature or "", secret, 300)
        return json.loads(payload)
    except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError) as exc:
        raise SignatureError(str(exc)) from None


def build_checkout_completed_event(payment):
    """A `checkout.session.completed` event shaped like Stripe's, for the test checkout."""
    now = int(time.time())
    intent = f"pi_test_builtin_{payment.id}"
    return {
        "id": f"evt_test_{uuid.uuid4().hex}",
        "object": "event",
        "api_version": "2026-07-29.dahlia",
        "created": now,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "checkout.session.completed",
        "data": {"object": {
            "id": payment.checkout_id,
            "object": "checkout.session",
            "amount_subtotal": payment.amount_cents,
            "amount_total": payment.amount_cents,
            "client_reference_id": str(payment.id),
            "created": now,
            "currency": payment.currency,
            "customer_email": payment.customer.email,
            "livemode": False,
            "metadata": {"payment_id": str(payment.id)},
            "mode": "payment",
            "payment_intent": intent,
            "payment_status": "paid",
            "status": "complete",
        }},
    }


def sign(payload: str, secret=None):
    """The Stripe-Signature header for a payload, as Stripe would send it."""
    secret = secret or current_app.config["STRIPE_WEBHOOK_SECRET"]
    return stripe.WebhookSignature.generate_signature_header(payload, secret)


def deliver_test_event(event):
    """POST a signed test event to our own webhook handler through the WSGI stack, exactly
    as Stripe's delivery would arrive. Returns the HTTP status."""
    payload = json.dumps(event)
    client = current_app.test_client()
    response = client.post("/webhooks/stripe", data=payload, content_type="application/json",
                           headers={"Stripe-Signature": sign(payload)})
    return response.status_code
