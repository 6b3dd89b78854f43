"""The room's clock and presence: 5- and 1-minute warnings sent once each (job or sweep),
paid +15 minute extensions through the same checkout and webhook as the session itself
(price from the plan, ledger balanced, refunded when the session already ended), and the
"seen" marker that only moves forward."""
from datetime import datetime, timedelta

import pytest
from flask import current_app

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import ConsultSession, LedgerEntry, Payment, Plan
from autodoctor.services import chat, lifecycle, money, payments, sweep, timeline
from autodoctor.services.errors import Conflict, NotFound
from tests.factories import AcceptedSessionFactory, checkout_completed_event, signed

T0 = datetime(2026, 11, 24, 12, 0, 0)


def live_session(customer, mechanic, plan_code="video15"):
    clock.set(T0)
    return AcceptedSessionFactory(customer, mechanic, plan_code, live=True).id


def fresh(session_id):
    db.session.expire_all()
    return db.session.get(ConsultSession, session_id)


def kinds(session_id):
    return [e.kind for e in timeline.for_session(session_id)]


@pytest.mark.parametrize("via", ["job", "sweep"])
def test_warnings_at_5_and_1_minute_are_sent_once_each(app, users, via):
    session_id = live_session(users["customer_a"], users["mechanic_a"])  # 45 minutes

    def run():
        if via == "job":
            result = lifecycle.warn_time_left(session_id)
            db.session.commit()
            return result
        return sweep.run_sweep()

    clock.set(T0 + timedelta(minutes=39, seconds=59))  # 5:01 left
    assert not run()
    clock.set(T0 + timedelta(minutes=40))
    assert run()
    assert fresh(session_id).warned_minutes == 5
    assert not run(), "the 5-minute warning is sent once"
    clock.set(T0 + timedelta(minutes=44))
    assert run()
    assert fresh(session_id).warned_minutes == 1
    assert not run()
    assert [e.detail for e in timeline.for_session(session_id) if e.kind == "time_warning"] == [
        "5 minutes left", "1 minute left"]


def test_a_late_sweep_sends_only_the_warning_that_is_due(app, users):
    session_id = live_session(users["customer_a"], users["mechanic_a"])
    clock.set(T0 + timedelta(minutes=44, seconds=30))  # the worker was down at 40 minutes
    assert sweep.run_sweep() == 1
    assert kinds(session_id).count("time_warning") == 1
    assert fresh(session_id).warned_minutes == 1


def test_room_status_shows_the_server_time_left_and_the_warning(app, users, login):
    session_id = live_session(users["customer_a"], users["mechanic_a"])
    clock.set(T0 + timedelta(minutes=40, seconds=30))
    lifecycle.warn_time_left(session_id)
    db.session.commit()
    html = login(users["customer_a"]).get(f"/room/{session_id}").get_data(as_text=True)
    assert 'data-remaining="270"' in html
    assert "5 minutes left" in html
    assert "Add 15 min · $9.99" in html


def extension_checkout(session_id, customer_id):
    with current_app.test_request_context():
        payments.start_extension_checkout(session_id, customer_id, lambda pid: f"http://localhost/ok/{pid}",
                                          "http://localhost/room")
    db.session.commit()
    return db.session.scalar(db.select(Payment).where(Payment.session_id == session_id,
                                                      Payment.purpose == "extension").order_by(Payment.id.desc()))


def deliver(client, payment, event=None):
    payload, headers = signed(event or checkout_completed_event(payment))
    response = client.post("/webhooks/stripe", data=payload, headers=headers)
    assert response.status_code == 200
    return response.get_json()["outcome"]


def test_extension_is_priced_by_the_plan_and_extends_the_clock_through_the_webhook(app, users):
    customer, mechanic = users["customer_a"], users["mechanic_a"]
    session_id = live_session(customer, mechanic)
    clock.set(T0 + timedelta(minutes=42))
    lifecycle.warn_time_left(session_id)
    db.session.commit()
    payment = extension_checkout(session_id, customer.id)
    assert (payment.amount_cents, payment.minutes, payment.status) == (999, 15, "open")
    assert payment.description == "+15 minutes — Standard Video"

    client, event = app.test_client(), checkout_completed_event(payment)
    assert deliver(client, payment, event) == "fulfilled"
    assert deliver(client, payment, event) == "duplicate"
    assert deliver(client, payment) == "no-op", "another event for the same checkout adds nothing"
    session = fresh(session_id)
    assert session.ends_at == T0 + timedelta(minutes=60)
    assert session.extended_minutes == 15
    assert session.warned_minutes is None, "18 minutes left again: the warnings start over"
    assert money.escrow_balance(session_id) == 2999 + 999

    clock.set(T0 + timedelta(minutes=60))
    assert sweep.run_sweep() >= 1
    session = fresh(session_id)
    assert session.status == "completed"
    earnings = {r.kind: r.amount_cents for r in money.session_entries(session_id)
                if r.account in (money.PLATFORM, money.mechanic_account(mechanic.id))}
    assert earnings == {"platform_fee": 800, "mechanic_earning": 3198}  # 20% of $39.98, rest to the mechanic
    assert money.escrow_balance(session_id) == 0


def test_extension_paid_after_the_session_ended_is_refunded_in_full(app, users):
    customer, mechanic = users["customer_a"], users["mechanic_a"]
    session_id = live_session(customer, mechanic)
    payment = extension_checkout(session_id, customer.id)
    lifecycle.end_session(session_id, mechanic.id, "All done.")
    db.session.commit()
    assert deliver(app.test_client(), payment) == "no-op"
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).status == "refunded"
    assert fresh(session_id).extended_minutes == 0
    assert money.escrow_balance(session_id) == 0
    refunds = [r for r in money.session_entries(session_id) if r.kind == "refund"]
    assert sorted(r.amount_cents for r in refunds) == [-999, 999]
    assert sum(db.session.scalars(db.select(LedgerEntry.amount_cents))) == 0


def test_extension_rules(app, users):
    customer, mechanic = users["customer_a"], users["mechanic_a"]
    session_id = live_session(customer, mechanic, plan_code="free")
    with current_app.test_request_context():
        with pytest.raises(Conflict, match="cannot be extended"):
            payments.start_extension_checkout(session_id, customer.id, str, "")
        with pytest.raises(NotFound):
            payments.start_extension_checkout(session_id, mechanic.id, str, "")
    lifecycle.end_at_time_limit(session_id, now=T0 + timedelta(minutes=5))
    db.session.commit()
    other = live_session(users["customer_b"], users["mechanic_b"], plan_code="chat10")
    lifecycle.end_session(other, users["mechanic_b"].id, "Done")
    db.session.commit()
    with current_app.test_request_context():
        with pytest.raises(Conflict, match="only while the session is live"):
            payments.start_extension_checkout(other, users["customer_b"].id, str, "")
    # The price is whatever the plan table says now, never what the page sent.
    db.session.scalar(db.select(Plan).where(Plan.code == "diagnostic")).extension_price_cents = 1234
    db.session.commit()
    third = live_session(users["customer_a"], users["mechanic_a"], plan_code="diagnostic")
    assert extension_checkout(third, users["customer_a"].id).amount_cents == 1234


def test_seen_marker_moves_forward_only_and_only_for_the_other_persons_lines(app, users):
    customer, mechanic = users["customer_a"], users["mechanic_a"]
    session_id = live_session(customer, mechanic)
    first = chat.post_message(session_id, mechanic.id, "Hi, what's the noise like?")
    second = chat.post_message(session_id, mechanic.id, "Does it happen when braking?")
    mine = chat.post_message(session_id, customer.id, "Only when braking")
    db.session.commit()
    assert not chat.mark_seen(session_id, customer.id, mine.id), "your own line is not 'seen' by you"
    assert chat.mark_seen(session_id, customer.id, second.id)
    assert not chat.mark_seen(session_id, customer.id, first.id), "never moves back"
    assert not chat.mark_seen(session_id, customer.id, "7")
    assert not chat.mark_seen(session_id, customer.id, 10**9)
    db.session.commit()
    assert chat.seen_marks(session_id) == {customer.id: second.id}
