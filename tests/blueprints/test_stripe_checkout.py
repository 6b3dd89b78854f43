"""Stripe mode, with Stripe's API answered by a local double built from the canonical
fixture objects: the checkout is created with the plan's price and an idempotency key,
the return page fulfils through the same function as the webhook, refunds go back."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from autodoctor.extensions import db
from autodoctor.models import ConsultSession, LedgerEntry, Payment
from tests.factories import UserFactory

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stripe"


class FakeStripe(BaseHTTPRequestHandler):
    calls = []
    paid = True

    def log_message(self, *args):
        pass

    def _reply(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        FakeStripe.calls.append(("POST", self.path, form, self.headers.get("Idempotency-Key")))
        if self.path == "/v1/checkout/sessions":
            session = json.loads((FIXTURES / "checkout_session.json").read_text())
            session.update(id="cs_test_fake_1", url="https://checkout.stripe.com/c/pay/cs_test_fake_1",
                           client_reference_id=form["client_reference_id"][0],
                           amount_total=int(form["line_items[0][price_data][unit_amount]"][0]), currency="usd")
            FakeStripe.last_session = session
            return self._reply(session)
        if self.path == "/v1/refunds":
            refund = json.loads((FIXTURES / "refund.json").read_text())
            refund.update(amount=int(form["amount"][0]), payment_intent=form["payment_intent"][0])
            return self._reply(refund)
        self.send_error(404)

    def do_GET(self):
        FakeStripe.calls.append(("GET", self.path, None, None))
        session = dict(FakeStripe.last_session)
        if FakeStripe.paid:
            session.update(status="complete", payment_status="paid", payment_intent="pi_fake_1")
        return self._reply(session)


@pytest.fixture
def stripe_app(app):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeStripe)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    FakeStripe.calls, FakeStripe.paid = [], True
    app.config.update(STRIPE_SECRET_KEY="sk_test_fake", STRIPE_API_BASE=f"http://127.0.0.1:{server.server_port}")
    yield app
    server.shutdown()


def intake_form(plan="video15"):
    return {"plan": plan, "year": "2016", "make": "Ford", "model": "Focus", "concern": "Transmission slips in 3rd",
            "city": "Ottawa", "country": "CA", "accept_waiver": "y"}


def test_checkout_uses_the_plan_price_and_an_idempotency_key(stripe_app, login):
    client = login(UserFactory("customer"))
    response = client.post("/customer/intake", data=intake_form())
    assert response.status_code == 303
    assert response.headers["Location"] == "https://checkout.stripe.com/c/pay/cs_test_fake_1"
    method, path, form, key = FakeStripe.calls[0]
    payment = db.session.scalar(db.select(Payment))
    assert (method, path) == ("POST", "/v1/checkout/sessions")
    assert form["line_items[0][price_data][unit_amount]"] == ["2999"]
    assert form["client_reference_id"] == [str(payment.id)]
    assert key == f"checkout-payment-{payment.id}"
    assert payment.checkout_id == "cs_test_fake_1" and payment.provider == "stripe"


def test_return_from_stripe_fulfils_once_and_a_later_refund_goes_back_to_stripe(stripe_app, login):
    client = login(UserFactory("customer"))
    client.post("/customer/intake", data=intake_form())
    payment_id = db.session.scalar(db.select(Payment.id))
    url = f"/customer/checkout/{payment_id}/success?checkout_session_id=cs_test_fake_1"
    response = client.get(url)
    assert response.status_code == 303 and "/customer/sessions/" in response.headers["Location"]
    client.get(url)  # a second return (or the webhook) creates nothing more
    assert db.session.scalar(db.select(db.func.count(ConsultSession.id))) == 1
    session_id = db.session.scalar(db.select(ConsultSession.id))
    assert client.post(f"/customer/sessions/{session_id}/cancel").status_code == 303
    refunds = [c for c in FakeStripe.calls if c[1] == "/v1/refunds"]
    assert len(refunds) == 1
    assert refunds[0][2]["payment_intent"] == ["pi_fake_1"] and refunds[0][2]["amount"] == ["2999"]
    assert refunds[0][3] == f"refund-payment-{payment_id}-2999"
    rows = db.session.scalars(db.select(LedgerEntry).where(LedgerEntry.session_id == session_id)).all()
    assert sum(r.amount_cents for r in rows if r.account == "escrow") == 0


def test_unpaid_return_creates_nothing(stripe_app, login):
    FakeStripe.paid = False
    client = login(UserFactory("customer"))
    client.post("/customer/intake", data=intake_form())
    payment_id = db.session.scalar(db.select(Payment.id))
    response = client.get(f"/customer/checkout/{payment_id}/success?checkout_session_id=cs_test_fake_1")
    assert "Confirming your payment" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(ConsultSession.id))) == 0
