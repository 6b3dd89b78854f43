"""Account credit as the customer sees it: the dashboard says how much there is, checkout
takes it off the price and charges the card the rest (or skips the card), the receipt shows
both, Stripe is asked for the card part only, and a checkout Stripe lets expire gives the
credit back (correctly signed `checkout.session.expired`)."""
import json
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import ConsultSession, OutboxEmail, Payment
from autodoctor.services import money, payments, sweep
from tests.blueprints.test_stripe_checkout import FakeStripe, intake_form, stripe_app  # noqa: F401
from tests.blueprints.test_webhooks import INTAKE, post_event, start_intake, stripe_event
from tests.factories import PaymentFactory, UserFactory
from tests.services.test_credit import give_credit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stripe"


def expired_event(payment):
    """Stripe's `checkout.session.expired` for the payment's checkout, from the published
    fixtures (an expired session is `status: "expired"`, unpaid)."""
    event = json.loads((FIXTURES / "event.json").read_text())
    checkout = json.loads((FIXTURES / "checkout_session.json").read_text())
    checkout.update({"id": payment.checkout_id, "client_reference_id": str(payment.id),
                     "metadata": {"payment_id": str(payment.id)}, "amount_total": payment.amount_cents,
                     "currency": "usd", "status": "expired", "payment_status": "unpaid"})
    event.update({"id": f"evt_{uuid.uuid4().hex[:24]}", "type": "checkout.session.expired",
                  "created": int(time.time()), "api_version": "2026-07-29.dahlia", "data": {"object": checkout}})
    return event


def test_the_dashboard_shows_the_credit_only_when_there_is_some(login, users):
    customer = login(users["customer_a"])
    assert "account credit" not in customer.get("/customer/").get_data(as_text=True)
    give_credit(users["customer_a"], 1250)
    html = customer.get("/customer/").get_data(as_text=True)
    assert "$12.50 account credit</strong> — used automatically at your next checkout" in html


def test_partial_credit_checkout_shows_the_credit_and_charges_the_card_the_rest(login, users):
    give_credit(users["customer_a"], 500)
    customer = login(users["customer_a"])
    payment_id = start_intake(customer)  # chat10, $9.99
    page = customer.get(f"/customer/checkout/{payment_id}/test").get_data(as_text=True)
    assert "Account credit</td><td>−$5.00" in page
    assert "To pay by card</th><th>$4.99" in page and "Pay $4.99" in page
    assert "$0.00 account credit" not in customer.get("/customer/").get_data(as_text=True)

    response = customer.post(f"/customer/checkout/{payment_id}/test", data={"card_number": "4242424242424242"})
    assert response.status_code == 303
    db.session.expire_all()
    payment = db.session.get(Payment, payment_id)
    assert payment.status == "paid" and payment.session_id is not None
    assert money.escrow_balance(payment.session_id) == 999
    receipt = db.session.scalar(sa.select(OutboxEmail).where(OutboxEmail.subject.like("Receipt:%")))
    assert "Price:           $9.99" in receipt.body_text
    assert "Account credit: −$5.00" in receipt.body_text and "Paid by card:    $4.99" in receipt.body_text


def test_credit_that_covers_the_price_skips_the_card(login, users):
    give_credit(users["customer_a"], 2000)
    customer = login(users["customer_a"])
    response = customer.post("/customer/intake", data=INTAKE)
    assert response.status_code == 303
    session = db.session.scalar(sa.select(ConsultSession))
    assert response.headers["Location"] == f"/customer/sessions/{session.id}"
    assert "$10.01 account credit" in customer.get("/customer/").get_data(as_text=True)


def test_an_expired_stripe_checkout_gives_the_credit_back_and_a_late_payment_takes_it_again(client, users):
    give_credit(users["customer_a"], 500)
    payment = PaymentFactory(users["customer_a"], "chat10")
    db.session.commit()
    assert money.credit_balance(users["customer_a"].id) == 0
    event = expired_event(payment)
    response = post_event(client, event)
    assert response.status_code == 200 and response.get_json()["outcome"] == "credit released"
    db.session.expire_all()
    assert money.credit_balance(users["customer_a"].id) == 500
    assert post_event(client, event).get_json()["outcome"] == "duplicate"
    again = expired_event(payment)  # another delivery under another id: nothing more comes back
    assert post_event(client, again).get_json()["outcome"] == "no-op"
    db.session.expire_all()
    assert money.credit_balance(users["customer_a"].id) == 500
    assert db.session.get(Payment, payment.id).status == "open"

    assert post_event(client, stripe_event(payment)).get_json()["outcome"] == "fulfilled"
    db.session.expire_all()
    assert money.credit_balance(users["customer_a"].id) == 0
    assert money.escrow_balance(db.session.get(Payment, payment.id).session_id) == 999
    assert payments.release_credit(payment.id) == 0  # paid: nothing to give back


def test_an_expired_checkout_without_credit_changes_nothing(client, users):
    payment = PaymentFactory(users["customer_a"], "chat10")
    db.session.commit()
    response = post_event(client, expired_event(payment))
    assert response.status_code == 200 and response.get_json()["outcome"] == "no-op"
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).status == "open"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ConsultSession)) == 0


def test_stripe_is_asked_for_the_card_part_and_refunds_only_that(stripe_app, login):  # noqa: F811
    customer = UserFactory("customer")
    give_credit(customer, 1000)
    client = login(customer)
    client.post("/customer/intake", data=intake_form())  # video15, $29.99
    _, _, form, _ = FakeStripe.calls[0]
    assert form["line_items[0][price_data][unit_amount]"] == ["1999"]
    description = form["line_items[0][price_data][product_data][description]"][0]
    assert "account credit −$10.00" in description and "$19.99 to pay by card" in description

    payment_id = db.session.scalar(db.select(Payment.id))
    response = client.get(f"/customer/checkout/{payment_id}/success?checkout_session_id=cs_test_fake_1")
    assert response.status_code == 303
    session_id = db.session.scalar(db.select(ConsultSession.id))
    assert client.post(f"/customer/sessions/{session_id}/cancel").status_code == 303
    refunds = [c for c in FakeStripe.calls if c[1] == "/v1/refunds"]
    assert [r[2]["amount"] for r in refunds] == [["1999"]]
    db.session.expire_all()
    assert money.credit_balance(customer.id) == 1000
    assert "$10.00 account credit" in client.get("/customer/").get_data(as_text=True)


def test_cancelling_an_appointment_paid_partly_with_credit_counts_the_whole_price(app, login):
    from tests.blueprints.test_appointment_pages import booked

    clock.set(datetime(2026, 1, 5, 12, 0))
    customer = UserFactory("customer")
    give_credit(customer, 1000)
    _, _, appointment = booked(app, customer=customer)  # $29.99: $10.00 credit, $19.99 card
    client = login(customer)
    clock.set(appointment.starts_at - timedelta(hours=1))
    confirm = client.get(f"/customer/appointments/{appointment.id}/cancel").get_data(as_text=True)
    assert "You paid $29.99." in confirm and "<strong>$15.00</strong>" in confirm
    client.post(f"/customer/appointments/{appointment.id}/cancel")
    db.session.expire_all()
    assert money.credit_balance(customer.id) == 1500
    assert "$15.00 account credit" in client.get("/customer/").get_data(as_text=True)


def test_paying_a_checkout_whose_credit_went_elsewhere_refunds_it_with_a_message(login, users):
    clock.set(datetime(2026, 3, 2, 9, 0))
    give_credit(users["customer_a"], 500)
    customer = login(users["customer_a"])
    stale = start_intake(customer)  # $4.99 by card + $5.00 credit, then left open for a day
    clock.advance(hours=24)
    sweep.run_sweep()
    assert money.credit_balance(users["customer_a"].id) == 500
    start_intake(customer)  # a new checkout takes the credit
    response = customer.post(f"/customer/checkout/{stale}/test", data={"card_number": "4242424242424242"},
                             follow_redirects=True)
    assert response.request.path == "/customer/"
    assert payments.CREDIT_GONE in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Payment, stale).status == "refunded"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ConsultSession)) == 0
