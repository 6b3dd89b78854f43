"""Model factories built on the real services, so test data obeys the same rules."""
import itertools
import json

from autodoctor.extensions import db
from autodoctor.integrations import stripe_gateway
from autodoctor.models import MechanicProfile, Payment
from autodoctor.services import accounts, intakes, payments, plans

PASSWORD = "correct-horse-battery"
_seq = itertools.count(1)


def UserFactory(role="customer", email=None, full_name=None, **profile):
    n = next(_seq)
    user = accounts.create_user(email or f"{role}{n}@example.com", PASSWORD, full_name or f"{role.title()} {n}",
                                role=role, city="Toronto", country="CA")
    if role == "mechanic":
        for key, value in profile.items():
            setattr(user.mechanic_profile, key, value)
    db.session.flush()
    return user


def IntakeFactory(customer, plan_code="chat10", **overrides):
    data = {"year": 2015, "make": "Honda", "model": "Civic", "vin": "", "concern": "Check engine light is on",
            "city": "Toronto", "country": "CA", "accept_waiver": True, "advice_only": False}
    data.update(overrides)
    return intakes.create_intake(customer, plans.get_plan(plan_code), data, [],
                                 {"ip": "127.0.0.1", "user_agent": "pytest"})


def PaymentFactory(customer, plan_code="chat10"):
    """An open checkout for a fresh intake (test-checkout provider)."""
    intake = IntakeFactory(customer, plan_code)
    url, session = payments.start_checkout(intake, lambda pid: f"http://localhost/customer/checkout/{pid}/success",
                                           "http://localhost/customer/intake")
    return db.session.scalar(db.select(Payment).where(Payment.intake_id == intake.id))


def PaidSessionFactory(customer, plan_code="chat10"):
    """A pending session, paid through the same fulfilment function the webhook uses."""
    payment = PaymentFactory(customer, plan_code)
    if payment.session_id:
        return payment.session
    return payments.fulfil_payment(payment.id, f"pi_test_{payment.id}")


def AcceptedSessionFactory(customer, mechanic, plan_code="chat10", live=False):
    """A paid session `mechanic` accepted (waiting), committed; with live=True both joined the
    room and its clock runs."""
    from autodoctor.services import lifecycle, routing

    session = PaidSessionFactory(customer, plan_code)
    routing.broadcast(session.current_request.id, early=True)  # whoever else is online: no head start
    db.session.commit()
    lifecycle.accept_request(session.current_request.id, mechanic.id)
    db.session.commit()
    if live:
        for user in (customer, mechanic):
            lifecycle.join_room(session.id, user.id)
            db.session.commit()
        assert lifecycle.maybe_go_live(session.id)
        db.session.commit()
    return db.session.get(type(session), session.id)


def checkout_completed_event(payment, **object_overrides):
    event = stripe_gateway.build_checkout_completed_event(payment)
    event["data"]["object"].update(object_overrides)
    return event


def signed(event, secret="whsec_test_secret"):
    payload = json.dumps(event)
    return payload, {"Stripe-Signature": stripe_gateway.sign(payload, secret), "Content-Type": "application/json"}


__all__ = ["UserFactory", "IntakeFactory", "PaymentFactory", "PaidSessionFactory", "AcceptedSessionFactory",
           "MechanicProfile",
           "checkout_completed_event", "signed", "PASSWORD"]
