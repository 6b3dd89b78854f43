"""Session and request lifecycle: every timeout boundary from DESIGN.md, driven by the
controllable clock, through the direct transition function and through the periodic sweep
(which must be idempotent); the database-enforced "one active session" rules on SQLite and
Postgres; customer cancel, busy mechanic, rating."""
import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import ConsultSession, LedgerEntry, MechanicProfile, SessionEvent, SessionRequest
from autodoctor.services import lifecycle, money, sweep, timeline
from autodoctor.services.errors import Conflict, Forbidden, ValidationError
from tests.factories import IntakeFactory, PaidSessionFactory, UserFactory

T0 = datetime(2026, 11, 24, 12, 0, 0)
SECOND = timedelta(seconds=1)


# --- helpers -------------------------------------------------------------------------------


def paid_session(customer, plan_code="chat10"):
    """A paid, pending session (+ pending request), committed. Returns (session_id, request_id).

    The test checkout builds its payment URL with url_for, which needs a request context."""
    with current_app.test_request_context():
        session = PaidSessionFactory(customer, plan_code)
    db.session.commit()
    return session.id, session.current_request.id


def get_session(session_id):
    db.session.expire_all()
    return db.session.get(ConsultSession, session_id)


def get_request(request_id):
    db.session.expire_all()
    return db.session.get(SessionRequest, request_id)


def event_kinds(session_id):
    db.session.expire_all()
    return [e.kind for e in timeline.for_session(session_id)]


def ledger(session_id):
    db.session.expire_all()
    return money.session_entries(session_id)


def snapshot():
    """Everything a transition could change, to prove a second sweep changes nothing."""
    db.session.expire_all()
    return (
        db.session.execute(sa.select(ConsultSession.id, ConsultSession.status, ConsultSession.ended_at)
                           .order_by(ConsultSession.id)).all(),
        db.session.execute(sa.select(SessionRequest.id, SessionRequest.status, SessionRequest.closed_at)
                           .order_by(SessionRequest.id)).all(),
        db.session.scalar(sa.select(sa.func.count(SessionEvent.id))),
        db.session.scalar(sa.select(sa.func.count(LedgerEntry.id))),
    )


def apply(via, transition, item_id):
    """Run one transition directly (then commit) or through the sweep. True if something moved.
    Through the sweep, also prove a second run is a no-op."""
    if via == "direct":
        moved = transition(item_id)
        db.session.commit()
        return moved
    moved = sweep.run_sweep()
    before = snapshot()
    assert sweep.run_sweep() == 0, "a second sweep must change nothing"
    assert snapshot() == before
    return moved > 0


def accept(request_id, mechanic):
    session = lifecycle.accept_request(request_id, mechanic.id)
    db.session.commit()
    return session


def assert_refunded_in_full(session_id, amount_cents):
    rows = ledger(session_id)
    refunds = [r for r in rows if r.kind == "refund"]
    assert sum(r.amount_cents for r in refunds if r.account == money.CUSTOMER) == amount_cents
    assert money.escrow_balance(session_id) == 0
    # The customer's account nets to zero for this session: paid, then got it all back.
    assert sum(r.amount_cents for r in rows if r.account == money.CUSTOMER) == 0
    assert not [r for r in rows if r.kind in ("platform_fee", "mechanic_earning")]


VIA = pytest.mark.parametrize("via", ["direct", "sweep"])


# --- pending -> unattended at 5 minutes ------------------------------------------------------

@VIA
def test_pending_request_becomes_unattended_at_5_minutes_not_before(app, users, via):
    clock.set(T0)
    session_id, request_id = paid_session(users["customer_a"])
    assert get_request(request_id).status == "pending"

    clock.set(T0 + timedelta(minutes=5) - SECOND)  # 4:59
    assert not apply(via, lifecycle.mark_unattended, request_id)
    assert get_request(request_id).status == "pending"
    assert "unattended" not in event_kinds(session_id)

    clock.set(T0 + timedelta(minutes=5))
    assert apply(via, lifecycle.mark_unattended, request_id)
    assert get_request(request_id).status == "unattended"
    assert get_session(session_id).status == "pending"  # still waiting for a mechanic; no refund
    assert event_kinds(session_id).count("unattended") == 1
    assert not [r for r in ledger(session_id) if r.kind == "refund"]

    # Once more, directly: nothing happens, nothing is written.
    before = snapshot()
    assert not lifecycle.mark_unattended(request_id)
    db.session.commit()
    assert snapshot() == before


# --- pending/unattended -> expired at 2 hours, full refund -----------------------------------

@VIA
@pytest.mark.parametrize("start", ["pending", "unattended"])
def test_open_request_expires_at_2_hours_with_full_refund(app, users, via, start):
    clock.set(T0)
    session_id, request_id = paid_session(users["customer_a"], "chat10")
    if start == "unattended":
        clock.set(T0 + timedelta(minutes=5))
        assert lifecycle.mark_unattended(request_id)
        db.session.commit()

    clock.set(T0 + timedelta(hours=2) - SECOND)
    apply(via, lifecycle.expire_request, request_id)  # the sweep may still mark it unattended
    assert get_request(request_id).status in ("pending", "unattended")
    assert get_session(session_id).status == "pending"
    assert money.escrow_balance(session_id) == 999
    assert "cancelled" not in event_kinds(session_id)

    clock.set(T0 + timedelta(hours=2))
    assert apply(via, lifecycle.expire_request, request_id)
    request, session = get_request(request_id), get_session(session_id)
    assert request.status == "expired"
    assert request.closed_at == T0 + timedelta(hours=2)
    assert session.status == "cancelled"
    assert session.end_reason == "expired"
    assert_refunded_in_full(session_id, 999)
    kinds = event_kinds(session_id)
    assert kinds.count("cancelled") == 1 and kinds.count("refunded") == 1
    # The customer is free to start again.
    assert lifecycle.active_session_for_customer(users["customer_a"].id) is None


# --- accepted, customer never joins -> cancelled at 30 minutes, mechanic freed ---------------

@VIA
def test_customer_no_show_cancels_at_30_minutes_and_frees_the_mechanic(app, users, via):
    mechanic = users["mechanic_a"]
    clock.set(T0)
    session_id, request_id = paid_session(users["customer_a"], "video15")
    t_accept = T0 + timedelta(minutes=2)
    clock.set(t_accept)
    accept(request_id, mechanic)
    assert get_session(session_id).status == "waiting"
    assert "accepted" in event_kinds(session_id)

    # The mechanic is in the room; the customer is not.
    lifecycle.join_room(session_id, mechanic.id)
    db.session.commit()

    clock.set(t_accept + timedelta(minutes=30) - SECOND)
    assert not apply(via, lifecycle.cancel_no_show, request_id)
    assert get_session(session_id).status == "waiting"
    assert get_request(request_id).status == "accepted"

    clock.set(t_accept + timedelta(minutes=30))
    assert apply(via, lifecycle.cancel_no_show, request_id)
    request, session = get_request(request_id), get_session(session_id)
    assert request.status == "cancelled"
    assert request.close_reason == "customer_no_show"
    assert session.status == "cancelled"
    assert session.end_reason == "customer_no_show"
    assert_refunded_in_full(session_id, 2999)
    assert event_kinds(session_id).count("cancelled") == 1

    # The mechanic is free: another customer's request can be accepted right away.
    assert not lifecycle.mechanic_busy(mechanic.id)
    other_session_id, other_request_id = paid_session(users["customer_b"])
    assert accept(other_request_id, mechanic).id == other_session_id
    assert get_session(other_session_id).status == "waiting"


def test_no_show_does_not_apply_once_the_customer_has_joined(app, users):
    clock.set(T0)
    session_id, request_id = paid_session(users["customer_a"])
    accept(request_id, users["mechanic_a"])
    lifecycle.join_room(session_id, users["customer_a"].id)
    db.session.commit()
    clock.set(T0 + timedelta(minutes=45))
    assert not lifecycle.cancel_no_show(request_id)
    assert sweep.run_sweep() == 0
    assert get_session(session_id).status == "waiting"


# --- waiting session orphaned -> cancelled at 60 minutes -------------------------------------

@VIA
def test_orphaned_waiting_session_is_cancelled_at_60_minutes(app, users, via):
    mechanic = users["mechanic_a"]
    clock.set(T0)
    session_id, request_id = paid_session(users["customer_a"], "chat10")
    accept(request_id, mechanic)
    # The customer showed up (so it is no no-show) but the mechanic never did: never live.
    lifecycle.join_room(session_id, users["customer_a"].id)
    db.session.commit()
    assert not lifecycle.maybe_go_live(session_id)

    clock.set(T0 + timedelta(minutes=60) - SECOND)
    assert not apply(via, lifecycle.cancel_orphaned, session_id)
    assert get_session(session_id).status == "waiting"

    clock.set(T0 + timedelta(minutes=60))
    assert apply(via, lifecycle.cancel_orphaned, session_id)
    session = get_session(session_id)
    assert session.status == "cancelled"
    assert session.end_reason == "orphaned"
    assert db.session.get(SessionRequest, request_id).status == "cancelled"
    assert_refunded_in_full(session_id, 999)
    assert event_kinds(session_id).count("cancelled") == 1
    assert not lifecycle.mechanic_busy(mechanic.id)


# --- live session ends itself at the plan's duration -----------------------------------------

@VIA
def test_live_session_ends_at_plan_duration(app, users, via):
    customer, mechanic = users["customer_a"], users["mechanic_a"]
    clock.set(T0)
    session_id, request_id = paid_session(customer, "video15")  # 45 minutes
    accept(request_id, mechanic)

    clock.set(T0 + timedelta(minutes=3))
    lifecycle.join_room(session_id, customer.id)
    db.session.commit()
    assert not lifecycle.maybe_go_live(session_id)  # only one person there
    lifecycle.join_room(session_id, mechanic.id)
    db.session.commit()
    assert lifecycle.maybe_go_live(session_id)
    db.session.commit()
    started = T0 + timedelta(minutes=3)
    session = get_session(session_id)
    assert session.status == "live"
    assert session.started_at == started
    assert session.ends_at == started + timedelta(minutes=45)
    assert "live" in event_kinds(session_id)

    # Neither the no-show nor the orphan timeout touches a live session.
    clock.set(started + timedelta(minutes=45) - SECOND)
    assert lifecycle.warn_time_left(session_id) == 1  # the "1 minute left" warning is due (tested elsewhere)
    db.session.commit()
    assert not apply(via, lifecycle.end_at_time_limit, session_id)
    assert get_session(session_id).status == "live"

    clock.set(started + timedelta(minutes=45))
    assert apply(via, lifecycle.end_at_time_limit, session_id)
    session = get_session(session_id)
    assert session.status == "completed"
    assert session.end_reason == "time_limit"
    assert session.ended_at == started + timedelta(minutes=45)
    assert event_kinds(session_id).count("completed") == 1
    assert money.escrow_balance(session_id) == 0
    earnings = {r.kind: r.amount_cents for r in ledger(session_id)
                if r.account in (money.PLATFORM, money.mechanic_account(mechanic.id))}
    assert earnings == {"platform_fee": 600, "mechanic_earning": 2399}
    assert db.session.get(MechanicProfile, mechanic.id).completed_sessions == 1
    assert not lifecycle.mechanic_busy(mechanic.id)


def test_every_transition_writes_a_timeline_row(app, users):
    customer, mechanic = users["customer_a"], users["mechanic_a"]
    clock.set(T0)
    session_id, request_id = paid_session(customer)
    clock.set(T0 + timedelta(minutes=5))
    sweep.run_sweep()
    accept(request_id, mechanic)  # an unattended request can still be taken
    for user in (customer, mechanic):
        lifecycle.join_room(session_id, user.id)
        db.session.commit()
    lifecycle.maybe_go_live(session_id)
    db.session.commit()
    lifecycle.end_session(session_id, mechanic.id, "Replace the front pads.")
    db.session.commit()
    assert event_kinds(session_id) == ["created", "unattended", "accepted", "joined", "joined", "live",
                                       "completed"]
    rows = timeline.for_session(session_id)
    assert rows[2].actor_id == mechanic.id
    assert all(r.created_at is not None for r in rows)


# --- one active session per customer / mechanic: enforced by the database ---------------------

@pytest.fixture(params=["sqlite", "postgres"])
def any_app(request):
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


def _insert_session(customer, status, mechanic=None, plan_code="chat10"):
    intake = IntakeFactory(customer, plan_code)
    db.session.execute(sa.insert(ConsultSession).values(
        customer_id=customer.id, mechanic_id=mechanic.id if mechanic else None, plan_id=intake.plan_id,
        intake_id=intake.id, status=status, minutes=30, created_at=clock.now()))
    db.session.flush()


def test_database_allows_one_active_session_per_customer(any_app):
    customer = UserFactory("customer")
    db.session.commit()
    paid_session(customer)
    for status in ("pending", "waiting", "live"):
        with pytest.raises(IntegrityError):
            _insert_session(customer, status)
        db.session.rollback()
    # Finished sessions do not count: the index is partial.
    _insert_session(customer, "completed")
    _insert_session(customer, "cancelled")
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ConsultSession)
                             .where(ConsultSession.customer_id == customer.id)) == 3


def test_database_allows_one_waiting_or_live_session_per_mechanic(any_app):
    first, second, third = (UserFactory("customer") for _ in range(3))
    mechanic = UserFactory("mechanic")
    db.session.commit()
    _, request_id = paid_session(first)
    accept(request_id, mechanic)
    for status in ("waiting", "live"):
        with pytest.raises(IntegrityError):
            _insert_session(second, status, mechanic=mechanic)
        db.session.rollback()
    _insert_session(third, "completed", mechanic=mechanic)
    db.session.commit()


def test_database_allows_one_open_request_per_session(any_app):
    customer = UserFactory("customer")
    db.session.commit()
    session_id, _ = paid_session(customer)
    with pytest.raises(IntegrityError):
        db.session.execute(sa.insert(SessionRequest).values(
            session_id=session_id, customer_id=customer.id, status="unattended", created_at=clock.now()))
        db.session.flush()
    db.session.rollback()


def _race(app, n, work):
    """Run work(i) in n threads started together, each with its own app context (and
    database session). Returns the list of results (a value or the exception raised)."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        with app.app_context():
            barrier.wait()
            try:
                results[i] = work(i)
                db.session.commit()
            except Exception as exc:  # noqa: BLE001 - collected for the assertions
                db.session.rollback()
                results[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_first_mechanic_to_accept_wins_under_concurrency_on_postgres(pg_app):
    customer = UserFactory("customer")
    mechanics = [UserFactory("mechanic") for _ in range(6)]
    db.session.commit()
    session_id, request_id = paid_session(customer)
    mechanic_ids = [m.id for m in mechanics]

    results = _race(pg_app, len(mechanic_ids),
                    lambda i: lifecycle.accept_request(request_id, mechanic_ids[i]).id)
    winners = [r for r in results if r == session_id]
    losers = [r for r in results if isinstance(r, Conflict)]
    assert len(winners) == 1, results
    assert len(losers) == len(mechanic_ids) - 1, results
    assert all(lifecycle.TAKEN_MESSAGE in str(e.message) or "no longer available" in e.message for e in losers)
    session = get_session(session_id)
    assert session.status == "waiting"
    assert session.mechanic_id == mechanic_ids[results.index(session_id)]
    assert event_kinds(session_id).count("accepted") == 1


def test_mechanic_cannot_take_two_requests_at_once_under_concurrency_on_postgres(pg_app):
    customers = [UserFactory("customer") for _ in range(5)]
    mechanic = UserFactory("mechanic")
    db.session.commit()
    request_ids = [paid_session(c)[1] for c in customers]
    mechanic_id = mechanic.id

    results = _race(pg_app, len(request_ids), lambda i: lifecycle.accept_request(request_ids[i], mechanic_id).id)
    assert len([r for r in results if isinstance(r, int)]) == 1, results
    assert all(isinstance(r, Conflict) and r.message == lifecycle.BUSY_MESSAGE
               for r in results if not isinstance(r, int)), results
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ConsultSession).where(
        ConsultSession.mechanic_id == mechanic_id, ConsultSession.status.in_(("waiting", "live")))) == 1


# --- customer cancel, busy mechanic, rating --------------------------------------------------

def test_customer_cancels_a_pending_request_and_is_refunded(app, users):
    clock.set(T0)
    session_id, request_id = paid_session(users["customer_a"], "diagnostic")
    clock.set(T0 + timedelta(minutes=7))  # after it went to the admin queue: still cancellable
    sweep.run_sweep()
    assert get_request(request_id).status == "unattended"

    lifecycle.cancel_by_customer(session_id, users["customer_a"].id)
    db.session.commit()
    request, session = get_request(request_id), get_session(session_id)
    assert request.status == "cancelled" and request.close_reason == "customer_cancelled"
    assert session.status == "cancelled"
    assert_refunded_in_full(session_id, 4999)
    cancelled = [e for e in timeline.for_session(session_id) if e.kind == "cancelled"]
    assert len(cancelled) == 1 and cancelled[0].actor_id == users["customer_a"].id


def test_customer_cannot_cancel_someone_elses_or_an_accepted_session(app, users):
    session_id, request_id = paid_session(users["customer_a"])
    with pytest.raises(Forbidden):
        lifecycle.cancel_by_customer(session_id, users["customer_b"].id)
    accept(request_id, users["mechanic_a"])
    with pytest.raises(Conflict, match="already accepted"):
        lifecycle.cancel_by_customer(session_id, users["customer_a"].id)
    db.session.rollback()
    assert get_session(session_id).status == "waiting"
    assert money.escrow_balance(session_id) == 999


def test_busy_mechanic_gets_a_clear_conflict(app, users):
    mechanic = users["mechanic_a"]
    _, first_request = paid_session(users["customer_a"])
    second_session, second_request = paid_session(users["customer_b"])
    accept(first_request, mechanic)

    with pytest.raises(Conflict) as exc:
        lifecycle.accept_request(second_request, mechanic.id)
    assert exc.value.status_code == 409
    assert exc.value.message == lifecycle.BUSY_MESSAGE
    assert "already have an active session" in exc.value.message
    db.session.rollback()
    assert get_request(second_request).status == "pending"
    assert get_session(second_session).mechanic_id is None


def test_busy_mechanic_sees_the_message_on_the_dashboard(app, users, login):
    first_session, first_request = paid_session(users["customer_a"])
    _, second_request = paid_session(users["customer_b"])
    mechanic = login(users["mechanic_a"])
    taken = mechanic.post(f"/mechanic/requests/{first_request}/accept", headers={"HX-Request": "true"})
    assert taken.status_code == 204
    assert taken.headers["HX-Redirect"] == f"/room/{first_session}"

    busy = mechanic.post(f"/mechanic/requests/{second_request}/accept", headers={"HX-Request": "true"})
    assert busy.status_code == 409
    assert lifecycle.BUSY_MESSAGE in busy.get_data(as_text=True)
    assert get_request(second_request).status == "pending"

    other = login(users["mechanic_b"])
    late = other.post(f"/mechanic/requests/{first_request}/accept", headers={"HX-Request": "true"})
    assert late.status_code == 409
    assert lifecycle.TAKEN_MESSAGE in late.get_data(as_text=True)


def test_customer_cancels_from_the_waiting_page(app, users, login):
    session_id, _ = paid_session(users["customer_a"], "video15")
    customer = login(users["customer_a"])
    response = customer.post(f"/customer/sessions/{session_id}/cancel", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Your request was cancelled and your payment refunded in full." in page
    assert "This session was cancelled" in page
    assert_refunded_in_full(session_id, 2999)
    # Someone else's session cannot be cancelled (and its existence is not revealed).
    other_session, _ = paid_session(users["customer_b"])
    assert customer.post(f"/customer/sessions/{other_session}/cancel").status_code == 404
    assert get_session(other_session).status == "pending"


def test_request_already_taken_gives_a_clear_conflict(app, users):
    session_id, request_id = paid_session(users["customer_a"])
    accept(request_id, users["mechanic_a"])
    with pytest.raises(Conflict) as exc:
        lifecycle.accept_request(request_id, users["mechanic_b"].id)
    assert exc.value.message == lifecycle.TAKEN_MESSAGE
    db.session.rollback()
    assert get_session(session_id).mechanic_id == users["mechanic_a"].id


def test_only_mechanics_can_accept(app, users):
    _, request_id = paid_session(users["customer_a"])
    with pytest.raises(Forbidden):
        lifecycle.accept_request(request_id, users["customer_b"].id)


def _completed_session(users):
    customer, mechanic = users["customer_a"], users["mechanic_a"]
    session_id, request_id = paid_session(customer)
    accept(request_id, mechanic)
    for user in (customer, mechanic):
        lifecycle.join_room(session_id, user.id)
        db.session.commit()
    lifecycle.maybe_go_live(session_id)
    db.session.commit()
    lifecycle.end_session(session_id, mechanic.id, "Worn brake pads; replace soon.")
    db.session.commit()
    return session_id


def test_rating_is_1_to_5_and_only_once(app, users):
    customer, mechanic = users["customer_a"], users["mechanic_a"]
    session_id = _completed_session(users)
    for bad in (0, 6, -1):
        with pytest.raises(ValidationError, match="1 to 5"):
            lifecycle.rate_session(session_id, customer.id, bad, "")
    with pytest.raises(Forbidden):
        lifecycle.rate_session(session_id, users["customer_b"].id, 5, "")

    lifecycle.rate_session(session_id, customer.id, 4, "  Clear and quick.  ")
    db.session.commit()
    session = get_session(session_id)
    assert (session.rating, session.review) == (4, "Clear and quick.")
    profile = db.session.get(MechanicProfile, mechanic.id)
    assert (profile.rating_sum, profile.rating_count, profile.rating) == (4, 1, 4.0)

    with pytest.raises(Conflict, match="already been rated"):
        lifecycle.rate_session(session_id, customer.id, 1, "changed my mind")
    db.session.rollback()
    session = get_session(session_id)
    assert session.rating == 4
    profile = db.session.get(MechanicProfile, mechanic.id)
    assert (profile.rating_sum, profile.rating_count) == (4, 1)
    assert event_kinds(session_id).count("rated") == 1


def test_a_session_that_has_not_finished_cannot_be_rated(app, users):
    session_id, _ = paid_session(users["customer_a"])
    with pytest.raises(Conflict):
        lifecycle.rate_session(session_id, users["customer_a"].id, 5, "")
