"""Routing with a fixed clock: a new request is offered first to the top 3 online, free
matches (with the reasons), the customer's picked mechanic first; everyone sees it after the
60 s window (broadcast job, or the sweep as a backup); accept is refused to the others
meanwhile, in the same guarded UPDATE; the routing job is idempotent."""
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import current_app

from autodoctor import clock, jobs
from autodoctor.extensions import db
from autodoctor.jobs import routing as routing_jobs
from autodoctor.models import ConsultSession, Payment, RequestOffer, SessionEvent, SessionRequest
from autodoctor.services import lifecycle, matching, payments, routing, sweep
from autodoctor.services.errors import Conflict
from tests.factories import AcceptedSessionFactory, IntakeFactory, UserFactory

T0 = datetime(2026, 11, 24, 12, 0, 0)
WINDOW = timedelta(seconds=60)


@pytest.fixture(autouse=True)
def fixed_clock():
    clock.set(T0)


def online(name, **profile):
    """An approved mechanic with "Taking requests" on and a live dashboard."""
    profile.setdefault("city", None)
    city = profile.pop("city")
    user = UserFactory("mechanic", full_name=name, presence="online", online=True, **profile)
    if city:
        user.city, user.country = city
    return user


def open_request(customer, preferred=None, **intake_data):
    """A paid request, committed (the routing job runs inline after the commit, as in
    embedded mode). Returns its id."""
    with current_app.test_request_context():
        intake = IntakeFactory(customer, **intake_data)
        intake.preferred_mechanic_id = preferred
        payments.start_checkout(intake, lambda pid: f"http://localhost/customer/checkout/{pid}/success",
                                "http://localhost/customer/book")
        payment = db.session.scalar(sa.select(Payment).where(Payment.intake_id == intake.id))
        session = payments.fulfil_payment(payment.id, f"pi_test_{payment.id}")
        request_id = session.current_request.id
    db.session.commit()
    return request_id


def get_request(request_id):
    db.session.expire_all()
    return db.session.get(SessionRequest, request_id)


def offers(request_id):
    db.session.expire_all()
    return [(o.mechanic_id, o.rank, o.score, o.reasons) for o in db.session.scalars(
        sa.select(RequestOffer).where(RequestOffer.request_id == request_id).order_by(RequestOffer.rank))]


def events(request_id, kind):
    return db.session.scalars(sa.select(SessionEvent.detail).where(
        SessionEvent.request_id == request_id, SessionEvent.kind == kind)).all()


@pytest.fixture
def cast(app):
    """Five online mechanics of different strength (plus an offline and a busy star) and a
    Honda owner in Toronto with a brake noise."""
    people = {
        "honda": online("Hana Honda", brands="Honda", specialties="brakes", years_experience=12),
        "brakes": online("Bo Brakes", specialties="brakes, suspension", years_experience=6),
        "local": online("Lou Local", years_experience=2),
        "far": online("Fay Far", brands="Honda", years_experience=5, city=("Vancouver", "CA")),
        "abroad": online("Abe Abroad", city=("Boston", "US")),
        "offline": UserFactory("mechanic", full_name="Otto Offline", brands="Honda", specialties="brakes",
                               years_experience=20, red_seal=True),
        "busy": online("Bea Busy", brands="Honda", specialties="brakes", years_experience=20, red_seal=True),
        "customer": UserFactory("customer", full_name="Cy Customer"),
        "admin": UserFactory("admin"),
    }
    db.session.commit()
    AcceptedSessionFactory(UserFactory("customer"), people["busy"])  # routed before, now in a session
    return people


CONCERN = "Grinding noise from the front left wheel when braking"


def test_top_three_online_free_matches_get_offers_with_reasons(cast):
    request_id = open_request(cast["customer"], concern=CONCERN, make="Honda")
    got = offers(request_id)
    assert [(mechanic_id, rank) for mechanic_id, rank, _, _ in got] == [
        (cast["honda"].id, 1), (cast["brakes"].id, 2), (cast["far"].id, 3)]
    # Scores and reasons are the matching service's, phrase for phrase.
    pool = matching.candidates(ids=[cast["honda"].id, cast["brakes"].id, cast["far"].id])
    expected = matching.rank(matching.wanted(CONCERN, "Honda", "Toronto", "CA"), pool)
    assert [(m.mechanic_id, m.score, m.phrases) for m in expected] == [(m, s, r) for m, _, s, r in got]
    honda_reasons = got[0][3]
    assert "brand specialist: Honda" in honda_reasons and "same city: Toronto" in honda_reasons
    assert "knows brakes" in honda_reasons and "online now" in honda_reasons
    request = get_request(request_id)
    assert request.broadcast_at == T0 + WINDOW
    assert request.preferred_mechanic_id is None
    (detail,) = events(request_id, "offered")
    assert detail == "Offered first to Hana Honda, Bo Brakes, Fay Far; everyone from 12:01 UTC"


def test_busy_and_offline_mechanics_get_no_offer(cast):
    request_id = open_request(cast["customer"], concern=CONCERN, make="Honda")
    offered = {mechanic_id for mechanic_id, *_ in offers(request_id)}
    assert cast["busy"].id not in offered and cast["offline"].id not in offered


def test_fewer_online_mechanics_than_targets(app):
    only = online("Only One")
    customer = UserFactory("customer")
    db.session.commit()
    request_id = open_request(customer)
    assert [(m, r) for m, r, _, _ in offers(request_id)] == [(only.id, 1)]
    assert get_request(request_id).broadcast_at == T0 + WINDOW


def test_the_customers_pick_is_offered_first(cast):
    request_id = open_request(cast["customer"], preferred=cast["abroad"].id, concern=CONCERN, make="Honda")
    got = offers(request_id)
    assert [m for m, *_ in got] == [cast["abroad"].id, cast["honda"].id, cast["brakes"].id]
    assert got[0][3][0] == routing.PICKED_REASON
    assert got[0][2] == 50  # the pick's own score: online now (no place or brand points)
    assert get_request(request_id).preferred_mechanic_id == cast["abroad"].id


@pytest.mark.parametrize("who", ["offline", "busy"])
def test_a_pick_who_is_offline_or_busy_is_not_offered_first(cast, who):
    request_id = open_request(cast["customer"], preferred=cast[who].id, concern=CONCERN, make="Honda")
    got = offers(request_id)
    assert [m for m, *_ in got] == [cast["honda"].id, cast["brakes"].id, cast["far"].id]
    assert routing.PICKED_REASON not in got[0][3]
    assert get_request(request_id).preferred_mechanic_id is None


def test_nobody_online_means_everyone_at_once(app):
    offline = UserFactory("mechanic")
    customer = UserFactory("customer")
    db.session.commit()
    request_id = open_request(customer)
    assert get_request(request_id).broadcast_at is None
    assert offers(request_id) == []
    assert routing.visible_request_ids(offline.id, T0) == {request_id}
    lifecycle.accept_request(request_id, offline.id)
    db.session.commit()
    assert get_request(request_id).status == "accepted"


def test_visibility_per_mechanic_before_and_after_the_window(cast):
    request_id = open_request(cast["customer"], concern=CONCERN, make="Honda")
    for key in ("honda", "brakes", "far"):
        assert routing.visible_request_ids(cast[key].id, T0) == {request_id}
        assert [o.request_id for o in routing.offers_for(cast[key].id, T0)] == [request_id]
    for key in ("local", "abroad", "offline"):
        assert routing.visible_request_ids(cast[key].id, T0 + WINDOW - timedelta(seconds=1)) == set()
        assert routing.offers_for(cast[key].id, T0) == []
    # From broadcast_at on, everyone sees it, and it is no longer a targeted offer (it is on the
    # general list, so it never shows twice) — even before the broadcast job has run.
    after = T0 + WINDOW
    for key in ("honda", "local", "abroad", "offline"):
        assert routing.visible_request_ids(cast[key].id, after) == {request_id}
    assert routing.offers_for(cast["honda"].id, after) == []


def test_accept_is_refused_to_others_during_the_window(cast):
    request_id = open_request(cast["customer"], concern=CONCERN, make="Honda")
    clock.set(T0 + timedelta(seconds=30))
    with pytest.raises(Conflict) as refused:
        lifecycle.accept_request(request_id, cast["local"].id)
    assert refused.value.message == ("This request is offered to other mechanics first — it opens to everyone "
                                     "at 12:01 UTC.")
    db.session.rollback()
    request = get_request(request_id)
    assert (request.status, request.mechanic_id) == ("pending", None)
    assert get_request(request_id).session.status == "pending"


def test_accept_is_allowed_to_a_target_during_the_window(cast):
    request_id = open_request(cast["customer"], concern=CONCERN, make="Honda")
    clock.set(T0 + timedelta(seconds=30))
    session = lifecycle.accept_request(request_id, cast["far"].id)  # rank 3 may take it too
    db.session.commit()
    assert (session.status, session.mechanic_id) == ("waiting", cast["far"].id)
    with pytest.raises(Conflict) as late:  # others are told it is taken, not that it is held
        lifecycle.accept_request(request_id, cast["local"].id)
    assert late.value.message == lifecycle.TAKEN_MESSAGE


def test_accept_is_allowed_to_anyone_after_the_window(cast):
    request_id = open_request(cast["customer"], concern=CONCERN, make="Honda")
    clock.set(T0 + WINDOW)  # the broadcast job has not run: the clock decides
    session = lifecycle.accept_request(request_id, cast["abroad"].id)
    db.session.commit()
    assert session.mechanic_id == cast["abroad"].id


def test_admin_assign_bypasses_the_window(cast):
    request_id = open_request(cast["customer"], concern=CONCERN, make="Honda")
    session = lifecycle.accept_request(request_id, cast["local"].id, assigned_by=cast["admin"].id)
    db.session.commit()
    assert session.mechanic_id == cast["local"].id


def test_the_refusal_is_in_the_guarded_update(cast):
    """No read-then-write: even with the Python-side check of visibility gone, the UPDATE's
    WHERE refuses (the request row is untouched)."""
    request_id = open_request(cast["customer"], concern=CONCERN, make="Honda")
    statements = []

    def capture(conn, cursor, statement, *_):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", capture)
    try:
        with pytest.raises(Conflict):
            lifecycle.accept_request(request_id, cast["local"].id)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", capture)
    db.session.rollback()
    (accept_update,) = [s for s in statements if s.startswith("UPDATE session_requests")]
    assert "broadcast_at" in accept_update and "request_offers" in accept_update


def test_broadcast_job_opens_it_to_everyone_once(cast):
    request_id = open_request(cast["customer"], concern=CONCERN, make="Honda")
    routing_jobs.broadcast_job(request_id)  # early (a clock skew): nothing happens
    assert get_request(request_id).broadcast_at == T0 + WINDOW
    clock.set(T0 + WINDOW)
    routing_jobs.broadcast_job(request_id)
    assert get_request(request_id).broadcast_at is None  # NULL: everyone
    assert events(request_id, "broadcast") == ["Offered to every online mechanic"]
    routing_jobs.broadcast_job(request_id)  # a retry does nothing
    assert len(events(request_id, "broadcast")) == 1
    assert routing.visible_request_ids(cast["local"].id) == {request_id}
    assert routing.offers_for(cast["honda"].id) == []
    assert len(offers(request_id)) == 3  # the offers stay on record


def test_the_sweep_broadcasts_when_the_job_is_lost(cast):
    request_id = open_request(cast["customer"], concern=CONCERN, make="Honda")
    sweep.run_sweep(T0 + WINDOW - timedelta(seconds=1))  # (the sweep also expires presence: counts vary)
    assert get_request(request_id).broadcast_at == T0 + WINDOW
    assert events(request_id, "broadcast") == []
    clock.set(T0 + WINDOW + timedelta(seconds=5))
    sweep.run_sweep()
    assert get_request(request_id).broadcast_at is None
    assert sweep.run_sweep() == 0, "a second sweep must change nothing"
    assert len(events(request_id, "broadcast")) == 1


def test_a_lost_routing_job_delays_but_never_hides_a_request(cast, monkeypatch):
    monkeypatch.setattr(jobs, "enqueue", lambda *a: None)  # the routing job never runs
    request_id = open_request(cast["customer"], concern=CONCERN, make="Honda")
    request = get_request(request_id)
    assert request.broadcast_at == T0 + WINDOW and offers(request_id) == []  # held for routing
    assert routing.visible_request_ids(cast["honda"].id, T0) == set()
    sweep.run_sweep(T0 + WINDOW)
    assert get_request(request_id).broadcast_at is None
    assert routing.visible_request_ids(cast["local"].id, T0 + WINDOW) == {request_id}
    # The job finally runs (after the window): no head start left to give.
    assert routing.route_request(request_id, T0 + WINDOW) == []
    db.session.commit()
    assert offers(request_id) == []


def test_a_routing_job_that_runs_after_the_window_broadcasts(cast, monkeypatch):
    monkeypatch.setattr(jobs, "enqueue", lambda *a: None)
    request_id = open_request(cast["customer"], concern=CONCERN, make="Honda")
    assert routing.route_request(request_id, T0 + WINDOW + timedelta(seconds=3)) == []
    db.session.commit()
    assert get_request(request_id).broadcast_at is None and offers(request_id) == []
    assert len(events(request_id, "broadcast")) == 1


def test_nobody_free_when_the_job_runs_means_everyone_at_once(app, monkeypatch):
    monkeypatch.setattr(jobs, "enqueue", lambda *a: None)
    mechanic = online("Gone Soon")
    customer = UserFactory("customer")
    db.session.commit()
    request_id = open_request(customer)
    assert get_request(request_id).broadcast_at == T0 + WINDOW  # someone was online: held
    mechanic.mechanic_profile.presence = "offline"  # ... who left before the job ran
    db.session.commit()
    assert routing.route_request(request_id) == []
    db.session.commit()
    assert get_request(request_id).broadcast_at is None
    assert routing.visible_request_ids(UserFactory("mechanic").id, T0) == {request_id}


def test_a_request_not_held_is_not_routed_later(app, monkeypatch):
    monkeypatch.setattr(jobs, "enqueue", lambda *a: None)
    customer = UserFactory("customer")
    db.session.commit()
    request_id = open_request(customer)  # nobody online: everyone's at once
    online("Late Comer")
    db.session.commit()
    assert routing.route_request(request_id) == []
    db.session.commit()
    assert get_request(request_id).broadcast_at is None and offers(request_id) == []


def test_the_routing_job_is_idempotent(cast):
    request_id = open_request(cast["customer"], concern=CONCERN, make="Honda")  # routed once, inline
    before = offers(request_id)
    held_until = get_request(request_id).broadcast_at
    clock.set(T0 + timedelta(seconds=20))
    routing_jobs.route_request_job(request_id)  # retried
    assert offers(request_id) == before
    assert get_request(request_id).broadcast_at == held_until  # the window is not restarted
    assert len(events(request_id, "offered")) == 1


def test_two_runs_at_once_keep_one_set_of_offers(cast, monkeypatch):
    """The unique request/mechanic constraint settles a race: the loser keeps the winner's offers."""
    monkeypatch.setattr(jobs, "enqueue", lambda *a: None)
    request_id = open_request(cast["customer"], concern=CONCERN, make="Honda")
    winner = [RequestOffer(request_id=request_id, mechanic_id=cast["local"].id, rank=1, score=1, reasons=["x"])]
    real = routing._offers_of
    calls = []

    def first_sees_none(rid):  # the loser checked before the winner committed
        calls.append(rid)
        if len(calls) == 1:
            db.session.add_all(winner)
            db.session.commit()
            return []
        return real(rid)

    monkeypatch.setattr(routing, "_offers_of", first_sees_none)
    monkeypatch.setattr(routing, "targets", lambda intake: [matching.Match(cast["local"].id, 1, (("x", 1),))])
    got = routing.route_request(request_id)
    assert [(o.mechanic_id, o.rank) for o in got] == [(cast["local"].id, 1)]
    assert len(offers(request_id)) == 1


def test_a_closed_request_is_not_routed(cast, monkeypatch):
    monkeypatch.setattr(jobs, "enqueue", lambda *a: None)
    request_id = open_request(cast["customer"], concern=CONCERN, make="Honda")
    session_id = get_request(request_id).session_id
    lifecycle.cancel_by_customer(session_id, cast["customer"].id)
    db.session.commit()
    assert routing.route_request(request_id) == []
    assert routing.route_request(999999) == []
    assert db.session.get(ConsultSession, session_id).status == "cancelled"


def test_routing_announces_the_change(cast, monkeypatch):
    emitted = []
    monkeypatch.setattr(routing, "emit", lambda kind, **data: emitted.append((kind, data)))
    monkeypatch.setattr(jobs, "enqueue", lambda *a: None)
    request_id = open_request(cast["customer"], concern=CONCERN, make="Honda")
    routing.route_request(request_id)
    session_id = get_request(request_id).session_id
    assert emitted == [("request.changed", {"request_id": request_id, "session_id": session_id})]
    clock.set(T0 + WINDOW)
    routing.broadcast(request_id)
    assert emitted[-1] == ("request.changed", {"request_id": request_id, "session_id": session_id})


def test_taking_requests_follows_the_toggle(app):
    on = online("On")
    off = UserFactory("mechanic")
    db.session.commit()
    assert routing.taking_requests(on.id) and not routing.taking_requests(off.id)


def test_racing_accepts_during_the_window_on_postgres(pg_app):
    """Targets and others tap accept at the same moment, round after round, on Postgres: one
    target wins each time; every other mechanic is refused by the guarded UPDATE."""
    from tests.services.test_concurrency_pg import race

    strong = [online(f"Strong {i}", brands="Honda", years_experience=12) for i in range(12)]
    weak = [online(f"Weak {i}") for i in range(6)]
    db.session.commit()
    weak_ids = [m.id for m in weak]
    for _ in range(4):
        request_id = open_request(UserFactory("customer"), concern=CONCERN, make="Honda")
        targets = [m for m, *_ in offers(request_id)]
        assert len(targets) == 3 and set(targets) <= {m.id for m in strong}
        racers = targets + weak_ids

        def accept(i, request_id=request_id, racers=racers):
            return lifecycle.accept_request(request_id, racers[i]).id

        results = race(pg_app, len(racers), accept)
        winners = [racers[i] for i, r in enumerate(results) if not isinstance(r, Exception)]
        assert len(winners) == 1 and winners[0] in targets, results
        assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception)), results
        refused = {results[len(targets) + i].message for i in range(len(weak_ids))}
        assert refused <= {lifecycle.TAKEN_MESSAGE, lifecycle.HELD_MESSAGE.format(time="12:01 UTC")}
        db.session.expire_all()
        assert (get_request(request_id).status, get_request(request_id).mechanic_id) == ("accepted", winners[0])
