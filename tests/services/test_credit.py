"""Account credit pays at checkout: what it covers is reserved for the payment (never spent
twice, even by two checkouts at the same moment on Postgres), the card is charged the rest,
and credit that covers everything needs no card at all. A checkout that can no longer
complete gives its credit back; money going back to the customer goes to the card only up to
what the card paid, the rest back to account credit. Every transaction balances and each
payment's own hold in escrow ends at zero."""
from collections import defaultdict
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import current_app

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.integrations import stripe_gateway
from autodoctor.models import Appointment, ConsultSession, LedgerEntry, OutboxEmail, Payment
from autodoctor.services import appointments, lifecycle, money, payments, sweep
from tests.factories import IntakeFactory, UserFactory, checkout_completed_event, signed
from tests.services.test_availability import mechanic

NOW = datetime(2026, 1, 5, 12, 0)
TEN_AM = datetime(2026, 1, 12, 15, 0)  # Monday 10:00 in Toronto
VIDEO = 2999


# --- helpers ---------------------------------------------------------------------------------

def give_credit(customer, cents):
    """Account credit as a late cancellation leaves it (here funded by the platform, so the
    ledger stays whole without a whole appointment behind it)."""
    money._post(None, None, "Goodwill credit", (money.PLATFORM, "credit", -cents),
                (money.credit_account(customer.id), "credit", cents))
    db.session.commit()


def session_checkout(customer, plan_code="video15"):
    """Start a session checkout; returns (url, session, payment)."""
    intake = IntakeFactory(customer, plan_code)
    url, session = payments.start_checkout(intake, lambda pid: f"http://localhost/ok/{pid}", "http://localhost/x")
    db.session.commit()
    return url, session, db.session.scalar(sa.select(Payment).where(Payment.intake_id == intake.id))


def appointment_checkout(customer, m, starts_at=TEN_AM, kind="online"):
    appointment = appointments.hold_slot(customer.id, m, plan(), starts_at, kind=kind)
    url = payments.start_appointment_checkout(appointment, lambda pid: f"http://localhost/ok/{pid}", "http://x/")
    db.session.commit()
    return url, appointment, db.session.scalar(sa.select(Payment).where(Payment.appointment_id == appointment.id))


def plan(code="video15"):
    from autodoctor.models import Plan

    return db.session.scalar(sa.select(Plan).where(Plan.code == code))


def pay(payment):
    """The card part arrives through the real, signed webhook."""
    payload, headers = signed(checkout_completed_event(payment))
    response = current_app.test_client().post("/webhooks/stripe", data=payload, headers=headers)
    assert response.status_code == 200
    db.session.expire_all()
    return response.get_json()["outcome"]


def assert_ledger_whole():
    """Every transaction balances, and no payment's own hold keeps anything."""
    db.session.expire_all()
    rows = db.session.scalars(sa.select(LedgerEntry)).all()
    totals = defaultdict(int)
    for row in rows:
        totals[row.txn_id] += row.amount_cents
    assert all(total == 0 for total in totals.values()), dict(totals)
    for payment_id in {r.payment_id for r in rows if r.payment_id}:
        if db.session.get(Payment, payment_id).status != "open":
            held = money.held_for_payment(payment_id)
            booked = db.session.get(Payment, payment_id).appointment
            assert held == 0 or (booked is not None and booked.status == "booked"), (payment_id, held)
    return rows


def by_account(rows):
    out = defaultdict(int)
    for row in rows:
        out[row.account] += row.amount_cents
    return dict(out)


@pytest.fixture
def card_refunds(monkeypatch):
    """What actually goes back to cards through Stripe (the refund job runs after commit)."""
    sent = []
    monkeypatch.setattr(stripe_gateway, "refund", lambda intent, amount, key: sent.append(amount))
    return sent


# --- partial and full credit -----------------------------------------------------------------

def test_partial_credit_is_reserved_and_the_card_pays_the_rest(app):
    customer, m = UserFactory("customer"), UserFactory("mechanic")
    give_credit(customer, 1000)
    url, session, payment = session_checkout(customer)
    assert url.endswith(f"/customer/checkout/{payment.id}/test") and session is None
    assert (payment.amount_cents, payment.credit_cents, payment.provider) == (1999, 1000, "test_checkout")
    assert money.credit_balance(customer.id) == 0  # reserved: a second checkout cannot use it
    assert money.held_for_payment(payment.id) == 1000

    assert pay(payment) == "fulfilled"
    payment = db.session.get(Payment, payment.id)
    assert payment.status == "paid" and money.escrow_balance(payment.session_id) == VIDEO
    assert money.held_for_payment(payment.id) == 0  # it moved to the session with the card money

    session = db.session.get(ConsultSession, payment.session_id)
    lifecycle.accept_request(session.current_request.id, m.id)
    db.session.commit()
    for user in (customer, m):
        lifecycle.join_room(session.id, user.id)
        db.session.commit()
    assert lifecycle.maybe_go_live(session.id)
    lifecycle.end_session(session.id, m.id, "Fine.")
    db.session.commit()
    balances = by_account(assert_ledger_whole())
    assert money.escrow_balance(session.id) == 0
    # The mechanic and the platform are paid on the full price, credit included.
    assert balances == {money.CUSTOMER: -1999, money.credit_account(customer.id): 0, money.ESCROW: 0,
                        money.PLATFORM: 600 - 1000, money.mechanic_account(m.id): 2399}


def test_credit_that_covers_everything_opens_the_session_without_a_card(app):
    customer = UserFactory("customer")
    give_credit(customer, 5000)
    url, session, payment = session_checkout(customer)
    assert url is None and session is not None and session.status == "pending"
    assert (payment.status, payment.provider, payment.amount_cents, payment.credit_cents) == ("paid", "credit", 0,
                                                                                             VIDEO)
    assert money.credit_balance(customer.id) == 5000 - VIDEO
    assert money.escrow_balance(session.id) == VIDEO and money.held_for_payment(payment.id) == 0
    receipt = db.session.scalar(sa.select(OutboxEmail).where(OutboxEmail.subject.like("Receipt:%")))
    assert "Account credit: −$29.99" in receipt.body_text and "Paid by card:    $0.00" in receipt.body_text

    # Cancelled before anyone took it: the credit comes back as credit, nothing to the card.
    lifecycle.cancel_by_customer(session.id, customer.id)
    db.session.commit()
    assert money.credit_balance(customer.id) == 5000
    assert money.CUSTOMER not in by_account(assert_ledger_whole())
    told = db.session.scalar(sa.select(OutboxEmail).where(OutboxEmail.subject.like("%was cancelled%")))
    assert "$29.99 you paid with account credit is back in your account" in told.body_text
    assert "refunded" not in told.body_text


def test_credit_that_covers_an_appointment_books_it_at_once(app):
    clock.set(NOW)
    customer = UserFactory("customer")
    give_credit(customer, 3000)
    url, appointment, payment = appointment_checkout(customer, mechanic())
    assert url is None
    assert db.session.get(Appointment, appointment.id).status == "booked"
    assert (payment.status, payment.provider, payment.amount_cents, payment.credit_cents) == ("paid", "credit", 0,
                                                                                             VIDEO)
    assert money.credit_balance(customer.id) == 1 and money.held_for_payment(payment.id) == VIDEO
    subjects = db.session.scalars(sa.select(OutboxEmail.subject)).all()
    assert any(s.startswith("Receipt:") for s in subjects)


def test_a_free_plan_leaves_credit_alone(app):
    customer = UserFactory("customer")
    give_credit(customer, 1000)
    _, session, payment = session_checkout(customer, "free")
    assert session is not None and payment.credit_cents == 0 and payment.provider == "free"
    assert money.credit_balance(customer.id) == 1000


# --- giving credit back ----------------------------------------------------------------------

def test_expired_hold_gives_the_credit_back_once_and_a_late_payment_takes_it_again(app):
    clock.set(NOW)
    customer, m = UserFactory("customer"), mechanic()
    give_credit(customer, 1000)
    _, appointment, payment = appointment_checkout(customer, m)
    assert (payment.amount_cents, payment.credit_cents) == (1999, 1000)
    assert money.credit_balance(customer.id) == 0

    clock.set(NOW + timedelta(minutes=16))
    sweep.run_sweep()
    assert db.session.get(Appointment, appointment.id).status == "expired"
    assert money.credit_balance(customer.id) == 1000 and money.held_for_payment(payment.id) == 0
    sweep.run_sweep()
    assert money.credit_balance(customer.id) == 1000  # given back once

    # The customer pays anyway and the time is still free: booked, the credit taken again.
    assert pay(payment) == "fulfilled"
    assert db.session.get(Appointment, appointment.id).status == "booked"
    assert money.credit_balance(customer.id) == 0 and money.held_for_payment(payment.id) == VIDEO
    assert_ledger_whole()


def test_a_late_payment_whose_credit_was_spent_meanwhile_is_refunded_to_the_card(app, card_refunds):
    clock.set(NOW)
    customer, m = UserFactory("customer"), mechanic()
    give_credit(customer, 1000)
    _, appointment, payment = appointment_checkout(customer, m)
    payment.provider = "stripe"  # so the refund really goes out to the card
    db.session.commit()
    clock.set(NOW + timedelta(minutes=16))
    sweep.run_sweep()
    _, _, other = session_checkout(customer, "chat10")  # spends the credit given back
    assert other.credit_cents == 999 and money.credit_balance(customer.id) == 1

    assert pay(payment) == "no-op"
    payment = db.session.get(Payment, payment.id)
    assert payment.status == "refunded" and payment.failure_message == payments.CREDIT_GONE
    assert db.session.get(Appointment, appointment.id).status == "expired"
    assert card_refunds == [1999]
    assert money.credit_balance(customer.id) == 1 and money.held_for_payment(payment.id) == 0
    rows = db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.payment_id == payment.id)).all()
    assert by_account(rows)[money.CUSTOMER] == 0
    assert_ledger_whole()


def test_an_unpaid_checkout_gives_its_credit_back_after_24_hours(app):
    clock.set(NOW)
    customer = UserFactory("customer")
    give_credit(customer, 1000)
    _, _, payment = session_checkout(customer)
    clock.set(NOW + timedelta(hours=23))
    sweep.run_sweep()
    assert money.credit_balance(customer.id) == 0
    clock.set(NOW + timedelta(hours=24))
    sweep.run_sweep()
    assert money.credit_balance(customer.id) == 1000
    assert db.session.get(Payment, payment.id).status == "open"
    assert payments.release_credit(payment.id) == 0  # idempotent
    assert db.session.scalar(sa.select(sa.func.count()).select_from(
        payments.credit_to_release(clock.now()).subquery())) == 0
    assert_ledger_whole()


def test_a_second_paid_checkout_returns_card_to_card_and_credit_to_credit(app, card_refunds):
    customer = UserFactory("customer")
    give_credit(customer, 1000)
    _, _, first = session_checkout(customer)  # tab 1 takes the credit
    _, _, second = session_checkout(customer)  # tab 2, before either is paid: no credit left
    assert (first.amount_cents, first.credit_cents) == (1999, 1000)
    assert (second.amount_cents, second.credit_cents) == (VIDEO, 0)
    first.provider = "stripe"
    db.session.commit()
    assert pay(second) == "fulfilled"
    assert pay(first) == "no-op"  # already an active session: straight back
    first = db.session.get(Payment, first.id)
    assert first.status == "refunded"
    assert card_refunds == [1999]
    assert money.credit_balance(customer.id) == 1000 and money.held_for_payment(first.id) == 0
    assert_ledger_whole()


# --- refunds split card / credit -------------------------------------------------------------

def test_refund_of_a_session_goes_to_the_card_up_to_what_it_paid_and_the_rest_to_credit(app, card_refunds):
    customer = UserFactory("customer")
    give_credit(customer, 1000)
    _, _, payment = session_checkout(customer)
    payment.provider = "stripe"
    db.session.commit()
    assert pay(payment) == "fulfilled"
    session_id = db.session.get(Payment, payment.id).session_id
    lifecycle.cancel_by_customer(session_id, customer.id)
    db.session.commit()
    assert card_refunds == [1999]
    assert money.credit_balance(customer.id) == 1000
    rows = money.session_entries(session_id)
    assert sum(r.amount_cents for r in rows if r.account == money.CUSTOMER and r.kind == "refund") == 1999
    assert money.escrow_balance(session_id) == 0
    cancelled = db.session.scalar(sa.select(OutboxEmail).where(OutboxEmail.subject.like("%cancelled%")))
    assert "$19.99" in cancelled.body_text and "$29.99" not in cancelled.body_text
    assert by_account(assert_ledger_whole()).get(money.CUSTOMER) == 0


@pytest.mark.parametrize("before, to_card, to_credit, platform, mechanic_gets", [
    (timedelta(hours=24), 1999, 500, 500, 0),        # 2999 - $5 fee = 2499: the card paid 1999 only
    (timedelta(hours=3), 1999, 250, 150, 600),       # 75% = 2249
    (timedelta(hours=1), 0, 1500, 300, 1199),        # 50% as credit
])
def test_appointment_cancellation_tiers_count_credit_and_card_and_refund_the_card_at_most(
        app, card_refunds, before, to_card, to_credit, platform, mechanic_gets):
    clock.set(NOW)
    customer, m = UserFactory("customer"), mechanic()
    give_credit(customer, 1000)
    _, appointment, payment = appointment_checkout(customer, m)
    payment.provider = "stripe"
    db.session.commit()
    assert pay(payment) == "fulfilled"
    clock.set(TEN_AM - before)
    appointments.cancel(appointment.id, customer.id)
    db.session.commit()
    assert card_refunds == ([to_card] if to_card else [])
    assert money.credit_balance(customer.id) == to_credit
    rows = db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.payment_id == payment.id)).all()
    balances = by_account(rows)
    assert balances[money.CUSTOMER] == -1999 + to_card
    assert balances.get(money.PLATFORM, 0) == platform
    assert balances.get(money.mechanic_account(m), 0) == mechanic_gets
    assert money.held_for_payment(payment.id) == 0
    assert_ledger_whole()


def test_a_paid_appointment_moved_into_a_session_takes_card_and_credit_along(app):
    clock.set(NOW)
    customer, m = UserFactory("customer"), mechanic()
    give_credit(customer, 1000)
    _, appointment, payment = appointment_checkout(customer, m)
    assert pay(payment) == "fulfilled"
    session = ConsultSession(customer_id=customer.id, plan_id=payment.plan_id, status="pending", minutes=45,
                             intake_id=IntakeFactory(customer).id)
    db.session.add(session)
    db.session.flush()
    assert money.move_to_session(payment, session.id) == VIDEO
    assert money.move_to_session(payment, session.id) == 0  # once
    assert money.held_for_payment(payment.id) == 0 and money.escrow_balance(session.id) == VIDEO
    assert money.refund_session(session, "Refund: test") == 1999  # to the card; the rest to credit
    assert money.credit_balance(customer.id) == 1000
    assert_ledger_whole()


# --- two checkouts at the same moment (Postgres) ---------------------------------------------

@pytest.mark.parametrize("plan_code, credit", [("video15", 1000), ("chat10", 999)])
def test_two_checkouts_at_once_only_one_gets_the_credit(pg_app, plan_code, credit):
    """Two tabs check out at the same moment, ten times over: the credit is reserved by
    exactly one of them (with "chat10" it covers that one entirely, which opens its session),
    the other pays the full price by card, and nothing is spent twice."""
    from tests.services.test_concurrency_pg import fresh, race

    price = plan(plan_code).price_cents
    for _ in range(10):
        customer = UserFactory("customer")
        intake_ids = [IntakeFactory(customer, plan_code).id for _ in range(2)]
        give_credit(customer, credit)

        def work(i, ids=tuple(intake_ids)):
            from autodoctor.models import Intake

            url, session = payments.start_checkout(db.session.get(Intake, ids[i]), lambda pid: f"http://x/{pid}",
                                                   "http://x/")
            return url or session.id

        results = race(pg_app, 2, work)
        fresh()
        assert all(isinstance(r, (str, int)) for r in results), results
        made = db.session.scalars(sa.select(Payment).where(Payment.customer_id == customer.id)).all()
        used = min(credit, price)
        assert sorted(p.credit_cents for p in made) == [0, used]
        assert sorted(p.amount_cents for p in made) == [price - used, price]
        assert money.credit_balance(customer.id) == credit - used
        assert sum(money.held_for_payment(p.id) for p in made) + sum(
            money.escrow_balance(p.session_id) for p in made if p.session_id) == used
        assert_ledger_whole()
