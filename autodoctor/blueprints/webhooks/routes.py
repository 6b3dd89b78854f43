import logging

from flask import request
from sqlalchemy.exc import IntegrityError

from autodoctor.blueprints.webhooks import bp
from autodoctor.extensions import csrf, db
from autodoctor.integrations import livekit as livekit_gateway
from autodoctor.integrations import stripe_gateway
from autodoctor.services import payments, video

log = logging.getLogger(__name__)


@bp.post("/stripe")
@csrf.exempt
def stripe_create():
    """Stripe (or the built-in test checkout) tells us a checkout completed (fulfil it) or
    expired (its reserved account credit goes back). The signature is checked against the raw
    body; the event id and what it changes commit together."""
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


@bp.post("/livekit")
@csrf.exempt
def livekit_create():
    """LiveKit reports a participant joining or leaving a call. The Authorization header is a
    JWT signed with our API secret that carries the body's sha256; the event id makes a
    redelivery a no-op."""
    payload = request.get_data(cache=False)
    try:
        event = livekit_gateway.parse_webhook(payload, request.headers.get("Authorization"))
    except livekit_gateway.SignatureError as exc:
        log.warning("livekit webhook rejected: %s", exc)
        return {"error": "Invalid or missing LiveKit signature."}, 401
    try:
        outcome = video.record_webhook(event)
        db.session.commit()
    except IntegrityError:  # a concurrent delivery of the same event committed first
        db.session.rollback()
        outcome = "duplicate"
    log.info("livekit event %s (%s): %s", event.get("id"), event.get("event"), outcome)
    return {"received": True, "outcome": outcome}
