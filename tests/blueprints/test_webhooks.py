"""POST /webhooks/stripe with Stripe-shaped, correctly signed events (built from Stripe's own
published fixtures), and the built-in test checkout the customer uses, which goes through the
same handler."""
import json
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import stripe
from flask import current_app

from autodoctor.extensions import db
from autodoctor.models import ConsultSession, LedgerEntry, Payment, SessionRequest, StripeEvent
from autodoctor.services import lifecycle
from tests.factories import PaidSessionFactory, PaymentFactory, checkout_completed_event, signed

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stripe"
SECRET = "whsec_test_secret"
URL = "/webhooks/stripe"


# --- fixtures and helpers --------------------------------------------------------------------


def open_payment(customer, plan_code="chat10"):
    with current_app.test_request_context():  # the test checkout builds its URL with url_for
        payment = PaymentFactory(customer, plan_code)
    db.session.commit()
    return payment


def stripe_event(payment, **object_overrides):
    """event.json as the envelope, checkout_session.json as data.object, filled in so it
    completes `payment` (see the fixtures' README)."""
    event = json.loads((FIXTURES / "event.json").read_text())
    checkout = json.loads((FIXTURES / "checkout_session.json").read_text())
    checkout.update({
        "id": payment.checkout_id,
        "client_reference_id": str(payment.id),
        "metadata": {"payment_id": str(payment.id)},
        "amount_subtotal": payment.amount_cents,
        "amount_total": payment.amount_cents,
        "currency": "usd",
        "customer_email": payment.intake.customer.email,
        "payment_intent": f"pi_{uuid.uuid4().hex[:24]}",
        "payment_status": "paid",
        "status": "complete",
    })
    checkout.update(object_overrides)
    event.update({"id": f"evt_{uuid.uuid4().hex[:24]}", "type": "checkout.session.completed",
                  "created": int(time.time()), "api_version": "2026-07-29.dahlia"})
    event["data"] = {"object": checkout}
    return event


def post(client, payload, headers):
    return client.post(URL, data=payload, headers=headers)


def post_event(client, event, secret=SECRET):
    payload, headers = signed(event, secret)
    return post(client, payload, headers)


def counts():
    db.session.expire_all()
    return {
        "sessions": db.session.scalar(sa.select(sa.func.count(ConsultSession.id))),
        "requests": db.session.scalar(sa.select(sa.func.count(SessionRequest.id))),
        "ledger": db.session.scalar(sa.select(sa.func.count(LedgerEntry.id))),
        "events": db.session.scalar(sa.select(sa.func.count(StripeEvent.id))),
        "paid": db.session.scalar(sa.select(sa.func.count(Payment.id)).where(Payment.status != "open")),
    }


NOTHING = {"sessions": 0, "requests": 0, "ledger": 0, "events": 0, "paid": 0}


# --- the happy path --------------------------------------------------------------------------

def test_signed_checkout_completed_creates_one_pending_session(client, users):
    payment = open_payment(users["customer_a"], "video15")
    event = stripe_event(payment)
    response = post_event(client, event)
    assert response.status_code == 200
    assert response.get_json()["outcome"] == "fulfilled"

    db.session.expire_all()
    session = db.session.scalar(sa.select(ConsultSession))
    assert counts() == {"sessions": 1, "requests": 1, "ledger": 2, "events": 1, "paid": 1}
    assert session.status == "pending"
    assert session.customer_id == users["customer_a"].id
    assert session.minutes == 45
    assert session.current_request.status == "pending"
    payment = db.session.get(Payment, payment.id)
    assert payment.status == "paid" and payment.session_id == session.id
    assert payment.payment_intent_id == event["data"]["object"]["payment_intent"]
    rows = db.session.scalars(sa.select(LedgerEntry)).all()
    assert {(r.account, r.kind, r.amount_cents) for r in rows} == {
        ("customer", "payment", -2999), ("escrow", "payment", 2999)}
    assert all(r.session_id == session.id and r.payment_id == payment.id for r in rows)
    assert db.session.get(StripeEvent, event["id"]).type == "checkout.session.completed"


def test_factory_event_is_accepted_too(client, users):
    payment = open_payment(users["customer_a"])
    assert post_event(client, checkout_completed_event(payment)).status_code == 200
    assert counts()["sessions"] == 1


def test_async_payment_succeeded_also_fulfils(client, users):
    payment = open_payment(users["customer_a"])
    event = stripe_event(payment)
    event["type"] = "checkout.session.async_payment_succeeded"
    assert post_event(client, event).status_code == 200
    assert counts()["sessions"] == 1


# --- signatures ------------------------------------------------------------------------------

def _bad_signature_requests(payment):
    event = stripe_event(payment)
    payload, headers = signed(event)
    tampered = payload.replace(f'"amount_total": {payment.amount_cents}', '"amount_total": 1')
    assert tampered != payload
    stale = stripe.WebhookSignature.generate_signature_header(payload, SECRET, timestamp=int(time.time()) - 3600)
    return {
        "wrong secret": signed(event, "whsec_someone_else"),
        "missing header": (payload, {"Content-Type": "application/json"}),
        "garbage header": (payload, {"Stripe-Signature": "t=1,v1=deadbeef", "Content-Type": "application/json"}),
        "tampered body": (tampered, headers),
        "too old": (payload, {"Stripe-Signature": stale, "Content-Type": "application/json"}),
    }


@pytest.mark.parametrize("case", ["wrong secret", "missing header", "garbage header", "tampered body", "too old"])
def test_bad_signature_is_rejected_and_nothing_is_created(client, users, case):
    payment = open_payment(users["customer_a"])
    payload, headers = _bad_signature_requests(payment)[case]
    response = post(client, payload, headers)
    assert response.status_code == 400
    assert "signature" in response.get_json()["error"].lower()
    assert counts() == NOTHING
    assert db.session.get(Payment, payment.id).status == "open"


# --- idempotency -----------------------------------------------------------------------------

def test_replaying_the_same_event_changes_nothing(client, users):
    payment = open_payment(users["customer_a"])
    payload, headers = signed(stripe_event(payment))
    assert post(client, payload, headers).status_code == 200
    after_first = counts()
    assert after_first["sessions"] == 1
    for _ in range(2):
        response = post(client, payload, headers)
        assert response.status_code == 200
        assert response.get_json()["outcome"] == "duplicate"
    assert counts() == after_first


def test_a_second_distinct_event_for_the_same_payment_changes_nothing(client, users):
    payment = open_payment(users["customer_a"])
    assert post_event(client, stripe_event(payment)).status_code == 200
    after_first = counts()
    # e.g. Stripe also sends async_payment_succeeded, or the success page got there first
    again = stripe_event(payment)
    again["type"] = "checkout.session.async_payment_succeeded"
    response = post_event(client, again)
    assert response.status_code == 200
    assert response.get_json()["outcome"] == "no-op"
    assert counts() == {**after_first, "events": after_first["events"] + 1}


# --- events that must not fulfil -------------------------------------------------------------

@pytest.mark.parametrize("overrides", [
    {"amount_total": 1},
    {"amount_total": None},
    {"currency": "eur"},
    {"payment_status": "unpaid", "status": "open"},
    {"id": "cs_test_someone_elses_checkout"},
    {"client_reference_id": "999999", "metadata": {"payment_id": "999999"}},
    {"client_reference_id": None, "metadata": {}},
], ids=["amount-too-low", "amount-missing", "other-currency", "unpaid", "other-checkout-id",
        "unknown-payment", "no-reference"])
def test_checkout_that_does_not_match_the_payment_creates_nothing(client, users, overrides):
    payment = open_payment(users["customer_a"])
    response = post_event(client, stripe_event(payment, **overrides))
    assert response.status_code == 200  # acknowledged, so Stripe does not retry forever
    assert response.get_json()["outcome"] == "no-op"
    assert {k: v for k, v in counts().items() if k != "events"} == {k: 0 for k in NOTHING if k != "events"}
    assert db.session.get(Payment, payment.id).status == "open"


@pytest.mark.parametrize("body", [
    "{not json",
    "",
    "[]",
    '{"type": "checkout.session.completed"}',
    '{"id": 42, "type": "checkout.session.completed"}',
    '{"id": "evt_shape_1", "type": "checkout.session.completed", "data": "oops"}',
    '{"id": "evt_shape_2", "type": "checkout.session.completed", "data": {"object": []}}',
    '{"id": "evt_shape_3", "type": "checkout.session.completed", "data": {"object": {"payment_status": "paid",'
    ' "metadata": ["x"]}}}',
], ids=["broken", "empty", "array", "no-id", "numeric-id", "data-string", "object-list", "metadata-list"])
def test_malformed_body_with_valid_signature_is_a_4xx_or_ignored_never_500(client, users, body):
    payment = open_payment(users["customer_a"])
    headers = {"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(body, SECRET),
               "Content-Type": "application/json"}
    response = post(client, body, headers)
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code == 200:
        assert response.get_json()["outcome"] in ("ignored", "no-op")
    else:
        assert 400 <= response.status_code < 500
    assert {k: v for k, v in counts().items() if k != "events"} == {k: 0 for k in NOTHING if k != "events"}
    assert db.session.get(Payment, payment.id).status == "open"


# checkout.session.expired gives reserved account credit back: tests/blueprints/test_credit_checkout.py
@pytest.mark.parametrize("event_type", ["plan.created", "payment_intent.succeeded"])
def test_unrelated_event_types_are_acknowledged_and_ignored(client, users, event_type):
    payment = open_payment(users["customer_a"])
    if event_type == "plan.created":  # Stripe's example event exactly as published
        event = json.loads((FIXTURES / "event.json").read_text())
    else:
        event = stripe_event(payment)  # even one carrying a paid checkout for our payment
        event["type"] = event_type
    response = post_event(client, event)
    assert response.status_code == 200
    assert response.get_json()["outcome"] == "ignored"
    assert counts() == {**NOTHING, "events": 1}
    assert db.session.get(Payment, payment.id).status == "open"


def test_webhook_needs_no_csrf_token_and_no_login(tmp_path):
    """Stripe cannot send a CSRF token: the endpoint is exempt even with CSRF on."""
    import config
    from autodoctor import create_app
    from autodoctor.services import plans
    from tests.factories import UserFactory

    class Cfg(config.TestConfig):
        WTF_CSRF_ENABLED = True
        UPLOAD_DIR = str(tmp_path / "uploads")

    app = create_app(Cfg)
    with app.app_context():
        db.create_all()
        plans.seed_plans()
        customer = UserFactory("customer")
        db.session.commit()
        with app.test_request_context():
            payment = PaymentFactory(customer)
        db.session.commit()
        event = stripe_event(payment)
    payload, headers = signed(event)
    response = app.test_client().post(URL, data=payload, headers=headers)
    assert response.status_code == 200
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ConsultSession.id))) == 1
        db.drop_all()


# --- the built-in test checkout, as the customer uses it -------------------------------------

INTAKE = {"plan": "chat10", "year": "2011", "make": "Honda", "model": "Civic", "vin": "1HGCM82633A004352",
          "concern": "Grinding noise from the front left wheel when braking.", "city": "Toronto",
          "country": "CA", "accept_waiver": "y"}


def start_intake(customer_client, plan="chat10"):
    response = customer_client.post("/customer/intake", data={**INTAKE, "plan": plan})
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    location = response.headers["Location"]
    assert location.startswith("/customer/checkout/") and location.endswith("/test")
    return int(location.split("/")[3])


def test_test_checkout_with_a_good_card_opens_the_session(login, users):
    customer = login(users["customer_a"])
    payment_id = start_intake(customer)
    page = customer.get(f"/customer/checkout/{payment_id}/test")
    assert page.status_code == 200 and "$9.99" in page.get_data(as_text=True)

    response = customer.post(f"/customer/checkout/{payment_id}/test", data={"card_number": "4242 4242 4242 4242"},
                             follow_redirects=True)
    db.session.expire_all()
    session = db.session.scalar(sa.select(ConsultSession).where(
        ConsultSession.customer_id == users["customer_a"].id))
    assert session is not None and session.status == "pending"
    assert response.status_code == 200
    assert response.request.path == f"/customer/sessions/{session.id}"
    assert [r.status_code for r in response.history] == [303, 303]
    assert "Grinding noise" in response.get_data(as_text=True)
    payment = db.session.get(Payment, payment_id)
    assert payment.status == "paid" and payment.session_id == session.id
    assert counts() == {"sessions": 1, "requests": 1, "ledger": 2, "events": 1, "paid": 1}

    # Paying the same checkout again (back button) opens nothing new.
    again = customer.post(f"/customer/checkout/{payment_id}/test", data={"card_number": "4242424242424242"})
    assert again.status_code in (303, 402, 409)
    assert counts()["sessions"] == 1


@pytest.mark.parametrize("card,message", [("4000000000000002", "declined"),
                                          ("4000000000009995", "insufficient funds"),
                                          ("1234123412341234", "test cards")])
def test_test_checkout_with_a_declined_card_creates_nothing(login, users, card, message):
    customer = login(users["customer_a"])
    payment_id = start_intake(customer)
    response = customer.post(f"/customer/checkout/{payment_id}/test", data={"card_number": card})
    assert response.status_code == 402
    assert message in response.get_data(as_text=True)
    assert counts() == NOTHING
    assert db.session.get(Payment, payment_id).status == "open"
    # The customer can still pay with a good card afterwards.
    ok = customer.post(f"/customer/checkout/{payment_id}/test", data={"card_number": "4242424242424242"})
    assert ok.status_code == 303
    assert counts()["sessions"] == 1


def test_someone_elses_checkout_is_not_found(login, users):
    owner = login(users["customer_a"])
    payment_id = start_intake(owner)
    other = login(users["customer_b"])
    assert other.get(f"/customer/checkout/{payment_id}/test").status_code == 404
    assert other.post(f"/customer/checkout/{payment_id}/test",
                      data={"card_number": "4242424242424242"}).status_code == 404
    assert counts() == NOTHING


def test_customer_with_an_active_session_gets_a_clear_message_not_a_second_session(login, users):
    with current_app.test_request_context():
        existing = PaidSessionFactory(users["customer_a"])
    db.session.commit()
    customer = login(users["customer_a"])

    form = customer.get("/customer/intake", follow_redirects=True)
    assert "You already have an active session" in form.get_data(as_text=True)

    response = customer.post("/customer/intake", data=INTAKE, follow_redirects=True)
    assert response.request.path == f"/customer/sessions/{existing.id}"
    assert "You already have an active session" in response.get_data(as_text=True)
    assert counts()["sessions"] == 1
    assert lifecycle.active_session_for_customer(users["customer_a"].id).id == existing.id


def test_paying_a_second_checkout_from_another_tab_is_refunded_with_a_message(login, users):
    customer = login(users["customer_a"])
    first = start_intake(customer)
    second = start_intake(customer)  # two tabs, both on the checkout page
    assert customer.post(f"/customer/checkout/{first}/test", data={"card_number": "4242424242424242"}
                         ).status_code == 303
    response = customer.post(f"/customer/checkout/{second}/test", data={"card_number": "4242424242424242"},
                             follow_redirects=True)
    text = response.get_data(as_text=True)
    assert response.request.path == "/customer/"
    assert "already had an active session" in text and "refunded in full" in text
    db.session.expire_all()
    assert counts()["sessions"] == 1
    assert db.session.get(Payment, second).status == "refunded"
    rows = db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.payment_id == second)).all()
    assert sum(r.amount_cents for r in rows if r.account == "customer") == 0


def test_free_plan_skips_checkout(login, users):
    customer = login(users["customer_a"])
    response = customer.post("/customer/intake", data={**INTAKE, "plan": "free"})
    assert response.status_code == 303
    db.session.expire_all()
    session = db.session.scalar(sa.select(ConsultSession))
    assert response.headers["Location"] == f"/customer/sessions/{session.id}"
    assert counts() == {"sessions": 1, "requests": 1, "ledger": 0, "events": 0, "paid": 1}
