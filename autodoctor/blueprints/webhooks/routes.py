import logging

from flask import request
from sqlalchemy.exc import IntegrityError

from autodoctor.blueprints.webhooks import bp
from autodoctor.extensions import csrf, db
from autodoctor.integrations import stripe_gateway
from autodoctor.services import payments

log = logging.getLogger(__name__)


@bp.post("/stripe")
@csrf.exempt
def stripe_create():
    """Stripe (or the built-in test checkout) tells us a checkout completed. The signature
    is checked against the raw body; the event id and the fulfilment commit together."""
    payload = request.get_data(cache=False)
    try:
        event = stripe_gateway.parse_webhook(payload, request.headers.get("Stripe-Signature"))
    except stripe_gateway.SignatureError:
        return {"error": "Invalid signature."}, 400
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or "type" not in event:
        return {"error": "Not a Stripe event."}, 400
    try:
        outcome = payments.handle_stripe_event(event)
        db.session.commit()
    except IntegrityError:  # a concurrent delivery of the same event committed first
        db.session.rollback()
        outcome = "duplicate"
    log.info("stripe event %s (%s): %s", event["id"], event["type"], outcome)
    return {"received": True, "outcome": outcome}
