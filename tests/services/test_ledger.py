"""Money is a ledger: every transaction balances, a settled session's escrow is empty, the
platform fee is 20% rounded half up and the mechanic gets exactly the rest, refunds return
exactly what was paid, and a free session moves no money at all."""
from collections import defaultdict
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import current_app

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import ConsultSession, LedgerEntry, Payment
from autodoctor.services import lifecycle, money, payments, sweep, timeline
from tests.factories import PaidSessionFactory, PaymentFactory

T0 = datetime(2026, 11, 24, 9, 0, 0)
PRICES = {"quick_advice": 499, "chat10": 999, "video15": 2999, "diagnostic": 4999}


def paid_session(customer, plan_code):
    with current_app.test_request_context():  # the test checkout builds its URL with url_for
        session = PaidSessionFactory(customer, plan_code)
    db.session.commit()
    return session.id, session.current_request.id


def complete(session_id, request_id, customer, mechanic, by="mechanic"):
    lifecycle.accept_request(request_id, mechanic.id)
    db.session.commit()
    for user in (customer, mechanic):
        lifecycle.join_room(session_id, user.id)
        db.session.commit()
    assert lifecycle.maybe_go_live(session_id)
    db.session.commit()
    if by == "mechanic":
        lifecycle.end_session(session_id, mechanic.id, "Loose heat shield; tighten the clamp.")
        db.session.commit()
    else:
        clock.advance(hours=2)
        assert sweep.run_sweep() == 1
    db.session.expire_all()


def rows_for(session_id):
    db.session.expire_all()
    return money.session_entries(session_id)


def assert_every_transaction_balances(rows):
    totals = defaultdict(int)
    for row in rows:
        totals[row.txn_id] += row.amount_cents
    assert totals, "expected ledger rows"
    assert all(total == 0 for total in totals.values()), dict(totals)


def balances(rows):
    out = defaultdict(int)
    for row in rows:
        out[row.account] += row.amount_cents
    return dict(out)


# --- completed sessions ----------------------------------------------------------------------

@pytest.mark.parametrize("plan_code,fee,earning,ended_by", [
    ("quick_advice", 100, 399, "mechanic"),
    ("chat10", 200, 799, "mechanic"),
    ("video15", 600, 2399, "time_limit"),
    ("diagnostic", 1000, 3999, "mechanic"),
    ("diagnostic", 1000, 3999, "time_limit"),
])
def test_completed_session_pays_platform_fee_and_mechanic_exactly(app, users, plan_code, fee, earning, ended_by):
    clock.set(T0)
    customer, mechanic = users["customer_a"], users["mechanic_a"]
    session_id, request_id = paid_session(customer, plan_code)
    complete(session_id, request_id, customer, mechanic, by=ended_by)

    rows = rows_for(session_id)
    assert_every_transaction_balances(rows)
    assert money.escrow_balance(session_id) == 0
    assert balances(rows) == {
        money.CUSTOMER: -PRICES[plan_code],
        money.ESCROW: 0,
        money.PLATFORM: fee,
        money.mechanic_account(mechanic.id): earning,
    }
    assert fee + earning == PRICES[plan_code]
    by_kind = {(r.account, r.kind): r.amount_cents for r in rows}
    assert by_kind[(money.PLATFORM, "platform_fee")] == fee
    assert by_kind[(money.mechanic_account(mechanic.id), "mechanic_earning")] == earning
    assert by_kind[(money.ESCROW, "payment")] == PRICES[plan_code]
    # Exactly two transactions: the payment into escrow, and the settlement out of it.
    assert len({r.txn_id for r in rows}) == 2


def test_settlement_happens_once_even_if_the_session_is_ended_twice(app, users):
    customer, mechanic = users["customer_a"], users["mechanic_a"]
    session_id, request_id = paid_session(customer, "chat10")
    complete(session_id, request_id, customer, mechanic)
    count = len(rows_for(session_id))
    clock.advance(hours=3)
    assert not lifecycle.end_at_time_limit(session_id)
    assert sweep.run_sweep() == 0
    assert len(rows_for(session_id)) == count


@pytest.mark.parametrize("amount,percent,expected", [
    (999, 20, (200, 799)),
    (2999, 20, (600, 2399)),
    (4999, 20, (1000, 3999)),
    (499, 20, (100, 399)),
    (1, 20, (0, 1)),
    (3, 20, (1, 2)),        # 0.6 -> 1
    (10, 15, (2, 8)),       # 1.5 -> 2: half rounds up
    (30, 25, (8, 22)),      # 7.5 -> 8
    (999, 15, (150, 849)),  # 149.85 -> 150
    (999, 25, (250, 749)),  # 249.75 -> 250
    (0, 20, (0, 0)),
])
def test_fee_split_rounds_half_up_and_the_mechanic_gets_the_rest(amount, percent, expected):
    fee, rest = money.split(amount, percent)
    assert (fee, rest) == expected
    assert fee + rest == amount


def test_configured_fee_percent_is_used_for_settlement(app, users):
    app.config["PLATFORM_FEE_PERCENT"] = 15
    customer, mechanic = users["customer_a"], users["mechanic_a"]
    session_id, request_id = paid_session(customer, "chat10")
    complete(session_id, request_id, customer, mechanic)
    bal = balances(rows_for(session_id))
    assert bal[money.PLATFORM] == 150 and bal[money.mechanic_account(mechanic.id)] == 849


# --- refunds ---------------------------------------------------------------------------------

@pytest.mark.parametrize("plan_code,how", [
    ("quick_advice", "customer_cancel"),
    ("chat10", "expired"),
    ("video15", "no_show"),
    ("diagnostic", "customer_cancel"),
    ("diagnostic", "expired"),
])
def test_refund_returns_exactly_what_was_paid(app, users, plan_code, how):
    clock.set(T0)
    customer = users["customer_a"]
    session_id, request_id = paid_session(customer, plan_code)
    if how == "customer_cancel":
        lifecycle.cancel_by_customer(session_id, customer.id)
        db.session.commit()
    elif how == "expired":
        clock.advance(hours=2)
        sweep.run_sweep()
    else:
        lifecycle.accept_request(request_id, users["mechanic_a"].id)
        db.session.commit()
        clock.advance(minutes=30)
        sweep.run_sweep()

    rows = rows_for(session_id)
    assert_every_transaction_balances(rows)
    assert money.escrow_balance(session_id) == 0
    refunded = sum(r.amount_cents for r in rows if r.kind == "refund" and r.account == money.CUSTOMER)
    paid = sum(-r.amount_cents for r in rows if r.kind == "payment" and r.account == money.CUSTOMER)
    assert refunded == paid == PRICES[plan_code]
    assert balances(rows) == {money.CUSTOMER: 0, money.ESCROW: 0}
    assert money.mechanic_account(users["mechanic_a"].id) not in balances(rows)
    # A second attempt at refunding finds nothing left to return.
    assert money.refund_session(db.session.get(ConsultSession, session_id), "again") == 0


def test_second_payment_while_a_session_is_active_is_refunded_in_full(app, users):
    customer = users["customer_a"]
    with current_app.test_request_context():
        first = PaymentFactory(customer, "chat10")
        second = PaymentFactory(customer, "video15")  # opened in another tab before the first was paid
    db.session.commit()
    assert payments.fulfil_payment(first.id, "pi_1") is not None
    assert payments.fulfil_payment(second.id, "pi_2") is None
    db.session.commit()
    db.session.expire_all()
    second = db.session.get(Payment, second.id)
    assert second.status == "refunded" and second.session_id is None
    rows = db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.payment_id == second.id)).all()
    assert_every_transaction_balances(rows)
    assert balances(rows) == {money.CUSTOMER: 0, money.ESCROW: 0}
    assert sum(r.amount_cents for r in rows if r.kind == "refund" and r.account == money.CUSTOMER) == 2999


def test_whole_ledger_balances_across_many_sessions(app, users):
    clock.set(T0)
    a, b = users["customer_a"], users["customer_b"]
    s1, r1 = paid_session(a, "diagnostic")
    complete(s1, r1, a, users["mechanic_a"])
    s2, r2 = paid_session(b, "video15")
    lifecycle.cancel_by_customer(s2, b.id)
    db.session.commit()
    s3, r3 = paid_session(a, "chat10")
    complete(s3, r3, a, users["mechanic_b"], by="time_limit")
    all_rows = db.session.scalars(sa.select(LedgerEntry)).all()
    assert_every_transaction_balances(all_rows)
    assert sum(r.amount_cents for r in all_rows) == 0
    assert balances(all_rows)[money.ESCROW] == 0
    assert balances(all_rows)[money.PLATFORM] == 1000 + 200


# --- free plan -------------------------------------------------------------------------------

@pytest.mark.parametrize("outcome", ["completed", "expired"])
def test_free_plan_writes_no_money_rows(app, users, outcome):
    clock.set(T0)
    customer, mechanic = users["customer_a"], users["mechanic_a"]
    session_id, request_id = paid_session(customer, "free")
    payment = db.session.scalar(sa.select(Payment).where(Payment.session_id == session_id))
    assert payment.amount_cents == 0 and payment.provider == "free" and payment.status == "paid"
    if outcome == "completed":
        complete(session_id, request_id, customer, mechanic)
    elif outcome == "cancelled":
        lifecycle.cancel_by_customer(session_id, customer.id)
        db.session.commit()
    else:
        clock.advance(hours=2, minutes=1)
        sweep.run_sweep()
    db.session.expire_all()
    expected_status = "completed" if outcome == "completed" else "cancelled"
    assert db.session.get(ConsultSession, session_id).status == expected_status
    assert db.session.scalar(sa.select(sa.func.count(LedgerEntry.id))) == 0
    kinds = [e.kind for e in timeline.for_session(session_id)]
    assert "refunded" not in kinds


def test_refund_event_and_timeline_match_the_ledger(app, users):
    clock.set(T0)
    session_id, _ = paid_session(users["customer_a"], "video15")
    clock.set(T0 + timedelta(hours=2))
    sweep.run_sweep()
    events = [e for e in timeline.for_session(session_id) if e.kind == "refunded"]
    assert len(events) == 1 and "2999" in events[0].detail
