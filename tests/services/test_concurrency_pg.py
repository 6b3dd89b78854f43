"""Races on a real Postgres database, with real threads released together by a barrier.
Each thread has its own app context (so its own database session and connection) and
commits its own work, as concurrent web requests would.

- 50 mechanics tap "accept" on the same request at the same moment, 100 times over:
  exactly one wins each time, the 49 others get the "already accepted" conflict.
- One mechanic accepts two different requests at the same moment: only one succeeds,
  even with the Python "already busy" check out of the way (the partial unique index).
- Stripe delivers the same checkout.session.completed event 10 times at once: one session,
  one request, one ledger payment transaction.
"""
import json
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.integrations import stripe_gateway
from autodoctor.models import ConsultSession, LedgerEntry, Payment, SessionEvent, SessionRequest, StripeEvent
from autodoctor.services import lifecycle
from autodoctor.services.errors import Conflict
from tests.factories import PaidSessionFactory, PaymentFactory, UserFactory, checkout_completed_event

MECHANICS = 50
ROUNDS = 100


class Racers:
    """n threads that run work(i) together, round after round. In each round every thread
    opens its own app context (its own database session), waits at the start line, runs its
    work and commits (or rolls back), so each round is n concurrent "requests"."""

    def __init__(self, app, n):
        self.app, self.n = app, n
        self.start, self.done = threading.Barrier(n + 1), threading.Barrier(n + 1)
        self.work, self.results = None, [None] * n
        self.threads = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(n)]
        for thread in self.threads:
            thread.start()

    def run(self, work):
        """One round; returns, per thread, the value returned or the exception raised."""
        self.work, self.results = work, [None] * self.n
        self.start.wait(timeout=30)
        self.done.wait(timeout=60)
        return list(self.results)

    def _loop(self, i):
        while True:
            with self.app.app_context():
                self.start.wait()
                if self.work is None:
                    return
                try:
                    self.results[i] = self.work(i)
                    db.session.commit()
                except Exception as exc:  # noqa: BLE001 - collected for the assertions
                    db.session.rollback()
                    self.results[i] = exc
                finally:
                    db.session.remove()
            self.done.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.work = None
        self.start.wait(timeout=30)
        for thread in self.threads:
            thread.join(10)
            assert not thread.is_alive(), "a racing thread hung"


def race(app, n, work):
    with Racers(app, n) as racers:
        return racers.run(work)


def fresh():
    db.session.commit()  # end the main thread's read transaction: see what the threads committed
    db.session.expire_all()


def count(query):
    return db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))


def test_fifty_mechanics_accept_one_request_exactly_one_wins_100_times(pg_app):
    mechanic_ids = [UserFactory("mechanic").id for _ in range(MECHANICS)]
    db.session.commit()
    with Racers(pg_app, MECHANICS) as racers:
        for round_no in range(ROUNDS):
            session = PaidSessionFactory(UserFactory("customer"))
            db.session.commit()
            session_id, request_id = session.id, session.current_request.id

            results = racers.run(lambda i, rid=request_id, ids=tuple(mechanic_ids):
                                 lifecycle.accept_request(rid, ids[i]).id)

            winners = [i for i, r in enumerate(results) if r == session_id]
            conflicts = [r for r in results if isinstance(r, Conflict)]
            unexpected = [r for r in results if r != session_id and not isinstance(r, Conflict)]
            assert not unexpected, f"round {round_no}: {unexpected[:3]}"
            assert len(winners) == 1, f"round {round_no}: {len(winners)} winners"
            assert len(conflicts) == MECHANICS - 1
            assert {c.message for c in conflicts} == {lifecycle.TAKEN_MESSAGE}, f"round {round_no}"
            assert all("already accepted" in c.message for c in conflicts)

            fresh()
            winner_id = mechanic_ids[winners[0]]
            request = db.session.get(SessionRequest, request_id)
            session = db.session.get(ConsultSession, session_id)
            assert (request.status, request.mechanic_id) == ("accepted", winner_id)
            assert (session.status, session.mechanic_id) == ("waiting", winner_id)
            assert count(sa.select(SessionEvent).where(SessionEvent.session_id == session_id,
                                                       SessionEvent.kind == "accepted")) == 1
            # The winner is busy now; a free mechanic takes their place at the next start line.
            mechanic_ids[winners[0]] = UserFactory("mechanic").id
            db.session.commit()


def test_busy_mechanic_accepting_two_requests_at_once_gets_only_one(pg_app):
    _one_mechanic_two_requests(pg_app, rounds=10)


def test_the_database_index_alone_keeps_a_mechanic_to_one_session(pg_app, monkeypatch):
    """The Python "already busy" check cannot see a concurrent, uncommitted accept; take it
    away and the partial unique index on sessions(mechanic_id) must still refuse the second."""
    monkeypatch.setattr(lifecycle, "mechanic_busy", lambda mechanic_id: None)
    _one_mechanic_two_requests(pg_app, rounds=5)


def _one_mechanic_two_requests(app, rounds):
    mechanic_id = UserFactory("mechanic").id
    db.session.commit()
    for _ in range(rounds):
        request_ids = []
        for _ in range(2):
            session = PaidSessionFactory(UserFactory("customer"))
            db.session.commit()
            request_ids.append(session.current_request.id)

        results = race(app, 2, lambda i, rids=tuple(request_ids): lifecycle.accept_request(rids[i], mechanic_id).id)
        _assert_one_accepted(results, request_ids, mechanic_id)
        won = db.session.scalar(sa.select(ConsultSession.id).where(
            ConsultSession.mechanic_id == mechanic_id, ConsultSession.status == "waiting"))
        assert lifecycle.cancel_orphaned(won, now=clock.now() + timedelta(minutes=61))
        db.session.commit()


def _assert_one_accepted(results, request_ids, mechanic_id):
    accepted = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if not isinstance(r, int)]
    assert len(accepted) == 1, results
    assert len(refused) == 1 and isinstance(refused[0], Conflict), results
    assert refused[0].message == lifecycle.BUSY_MESSAGE
    fresh()
    assert count(sa.select(ConsultSession).where(ConsultSession.mechanic_id == mechanic_id,
                                                 ConsultSession.status.in_(("waiting", "live")))) == 1
    statuses = sorted(db.session.get(SessionRequest, rid).status for rid in request_ids)
    assert statuses == ["accepted", "pending"], "the refused request is still open for others"
    loser = next(db.session.get(SessionRequest, rid) for rid in request_ids
                 if db.session.get(SessionRequest, rid).status == "pending")
    assert loser.mechanic_id is None and loser.session.status == "pending" and loser.session.mechanic_id is None


@pytest.mark.parametrize("same_event_id", [True, False], ids=["one-event-10-deliveries", "10-events-one-checkout"])
def test_one_checkout_delivered_ten_times_at_once_fulfils_once(pg_app, same_event_id):
    """Through the real endpoint: signature checked on the raw body, the event id and the
    fulfilment commit together. Also with 10 distinct event ids for the same checkout
    (completed + async_payment_succeeded, as Stripe may send): the payment's guarded update
    still opens one session."""
    customer = UserFactory("customer")
    payment = PaymentFactory(customer)
    db.session.commit()
    payment_id = payment.id
    base = checkout_completed_event(payment)
    events = []
    for i in range(10):
        event = json.loads(json.dumps(base))
        if not same_event_id:
            event["id"] = f"{base['id']}_{i}"
            event["type"] = "checkout.session.completed" if i % 2 else "checkout.session.async_payment_succeeded"
        events.append(event)
    payloads = [json.dumps(e) for e in events]
    secret = pg_app.config["STRIPE_WEBHOOK_SECRET"]

    def deliver(i):
        response = pg_app.test_client().post(
            "/webhooks/stripe", data=payloads[i], content_type="application/json",
            headers={"Stripe-Signature": stripe_gateway.sign(payloads[i], secret)})
        return response.status_code, response.get_json()

    results = race(pg_app, 10, deliver)

    assert all(isinstance(r, tuple) and r[0] == 200 for r in results), results
    outcomes = sorted(body["outcome"] for _, body in results)
    if same_event_id:
        assert outcomes == ["duplicate"] * 9 + ["fulfilled"], outcomes
    else:
        assert outcomes == ["fulfilled"] + ["no-op"] * 9, outcomes
    fresh()
    payment = db.session.get(Payment, payment_id)
    assert payment.status == "paid" and payment.session_id is not None
    assert count(sa.select(ConsultSession).where(ConsultSession.customer_id == customer.id)) == 1
    assert count(sa.select(SessionRequest).where(SessionRequest.customer_id == customer.id)) == 1
    payment_rows = db.session.scalars(sa.select(LedgerEntry).where(
        LedgerEntry.payment_id == payment_id, LedgerEntry.kind == "payment")).all()
    assert len({row.txn_id for row in payment_rows}) == 1, "exactly one ledger payment transaction"
    assert sum(row.amount_cents for row in payment_rows) == 0
    assert sorted(row.amount_cents for row in payment_rows) == [-payment.amount_cents, payment.amount_cents]
    assert count(sa.select(StripeEvent)) == (1 if same_event_id else 10)


def test_extension_paid_while_the_mechanic_ends_the_session_is_added_or_refunded(pg_app):
    """20 rounds: the +15 minute payment is fulfilled at the same moment the mechanic ends the
    session. Either the time was added first (the settlement then includes it) or the
    session ended first (the extension is refunded in full); never both, never neither, and
    the session's escrow always ends at zero."""
    from autodoctor.services import money, payments
    from tests.factories import AcceptedSessionFactory

    for _ in range(20):
        customer, mechanic = UserFactory("customer"), UserFactory("mechanic")
        session = AcceptedSessionFactory(customer, mechanic, "video15", live=True)
        with pg_app.test_request_context():
            payments.start_extension_checkout(session.id, customer.id, str, "")
        db.session.commit()
        payment_id = db.session.scalar(sa.select(Payment.id).where(Payment.session_id == session.id,
                                                                   Payment.purpose == "extension"))
        session_id, mechanic_id = session.id, mechanic.id

        def work(i, sid=session_id, pid=payment_id, mid=mechanic_id):
            if i == 0:
                return payments.fulfil_payment(pid, "pi_ext") is not None
            return lifecycle.end_session(sid, mid, "Done.") is not None

        results = race(pg_app, 2, work)
        assert isinstance(results[0], bool) and results[1] is True, results
        fresh()
        payment, session = db.session.get(Payment, payment_id), db.session.get(ConsultSession, session_id)
        assert session.status == "completed"
        assert money.escrow_balance(session_id) == 0
        entries = money.session_entries(session_id)
        assert sum(e.amount_cents for e in entries) == 0
        paid_out = sum(e.amount_cents for e in entries if e.kind in ("platform_fee", "mechanic_earning")
                       and e.account != money.ESCROW)
        if results[0]:  # added in time: paid out with the session
            assert (payment.status, session.extended_minutes, paid_out) == ("paid", 15, 2999 + 999)
        else:  # the session had ended: straight back to the customer
            assert (payment.status, session.extended_minutes, paid_out) == ("refunded", 0, 2999)
            assert sum(e.amount_cents for e in entries if e.kind == "refund" and e.account == money.CUSTOMER) == 999
