"""The admin dashboard and the queue of unattended and expiring requests: today's numbers,
assigning a request to an eligible mechanic, giving it more time, cancelling it with a full
refund — each action in the audit log with the values before and after."""
from datetime import datetime, timedelta

import pytest

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import AuditEntry, ConsultSession, LedgerEntry, MechanicProfile, SessionRequest
from autodoctor.services import admin_dashboard, lifecycle, money, sweep, timeline
from tests.factories import AcceptedSessionFactory, PaidSessionFactory, UserFactory

T0 = datetime(2026, 3, 10, 9, 0, 0)


@pytest.fixture
def at_t0():
    clock.set(T0)


def unattended_session(customer=None):
    session = PaidSessionFactory(customer or UserFactory("customer"))
    db.session.commit()
    clock.set(clock.now() + timedelta(minutes=6))
    sweep.run_sweep()
    db.session.expire_all()
    return session.id


def request_of(session_id):
    db.session.expire_all()
    return db.session.get(ConsultSession, session_id).current_request


def go_online(*mechanic_ids):
    db.session.execute(db.update(MechanicProfile).where(MechanicProfile.user_id.in_(mechanic_ids))
                       .values(online=True, presence="online", last_seen_at=clock.now()))
    db.session.commit()


def audit_rows(action):
    return db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == action)).all()


def test_unattended_request_appears_in_the_admin_queue(app, login, at_t0):
    admin = UserFactory("admin")
    UserFactory("mechanic", full_name="Raj Spanner")
    session_id = unattended_session()
    client = login(admin)
    for path in ("/admin/", "/admin/queue"):
        page = client.get(path).get_data(as_text=True)
        assert f"#{session_id} Quick Chat" in page
        assert "Check engine light is on" in page
        assert "Raj Spanner" in page
        assert 'id="unattended-count" class="tile-value">1<' in page
    assert "Waiting <b>6 min</b>" in page
    assert "expires in <b>1 h 54 min</b>" in page


def test_queue_lists_open_requests_close_to_expiry_oldest_first(app, login, at_t0):
    old = PaidSessionFactory(UserFactory("customer"))  # still pending (no sweep ran): near its 2 hours
    db.session.commit()
    clock.set(T0 + timedelta(minutes=80))
    fresh = PaidSessionFactory(UserFactory("customer"))
    db.session.commit()
    clock.set(T0 + timedelta(minutes=95))
    assert [i.request.session_id for i in admin_dashboard.queue()] == [old.id]
    item = admin_dashboard.queue()[0]
    assert item.expiring and item.expires_in_seconds == 25 * 60
    page = login(UserFactory("admin")).get("/admin/queue").get_data(as_text=True)
    assert "expires soon" in page and f"#{fresh.id} " not in page
    assert 'id="unattended-count" class="tile-value">0<' in page


def test_empty_queue_says_so(app, login):
    page = login(UserFactory("admin")).get("/admin/queue").get_data(as_text=True)
    assert "Nobody is waiting." in page


def test_dashboard_shows_todays_numbers(app, login, at_t0):
    admin = UserFactory("admin")
    fast, slow, idle = (UserFactory("mechanic", full_name=n) for n in ("Fast Fay", "Slow Sam", "Idle Ida"))
    yesterday = AcceptedSessionFactory(UserFactory("customer"), idle, live=True)  # yesterday's: not counted
    lifecycle.end_session(yesterday.id, idle.id, "Done yesterday.")
    db.session.commit()
    clock.set(T0 + timedelta(days=1))
    first = PaidSessionFactory(UserFactory("customer"))  # $9.99, accepted after 100 s, completed
    second = PaidSessionFactory(UserFactory("customer"), "video15")  # $29.99, accepted after 160 s, live
    db.session.commit()
    clock.set(T0 + timedelta(days=1, seconds=100))
    lifecycle.accept_request(first.current_request.id, fast.id, assigned_by=admin.id)
    db.session.commit()
    clock.set(T0 + timedelta(days=1, seconds=160))
    lifecycle.accept_request(second.current_request.id, slow.id, assigned_by=admin.id)
    db.session.commit()
    for session, mechanic in ((first, fast), (second, slow)):
        for user_id in (session.customer_id, mechanic.id):
            lifecycle.join_room(session.id, user_id)
        db.session.commit()
        assert lifecycle.maybe_go_live(session.id)
        db.session.commit()
    lifecycle.end_session(first.id, fast.id, "Replace the O2 sensor.")
    db.session.commit()
    unattended_session()  # a third session today, $9.99, unattended
    go_online(fast.id, idle.id)
    metrics = admin_dashboard.metrics()
    assert metrics.sessions_today == 3
    assert metrics.live_now == 1
    assert metrics.unattended_now == 1
    assert metrics.revenue_cents == 999 + 2999 + 999
    assert metrics.platform_fees_cents == 200  # 20% of $9.99, rounded half up
    assert (metrics.accept_seconds, metrics.accepted_today) == (130, 2)
    assert metrics.mechanics_online == 2
    assert yesterday.id not in [s.id for s in db.session.scalars(db.select(ConsultSession).where(
        ConsultSession.created_at >= admin_dashboard.today_bounds()[0]))]
    page = login(admin).get("/admin/").get_data(as_text=True)
    assert "2 min 10 s" in page
    assert "$49.97" in page and "platform fees $2.00" in page
    assert 'href="/admin/queue"' in page
    assert f'href="/admin/sessions/{second.id}"' in page  # recent sessions link to their page


def test_duration_labels():
    assert [admin_dashboard.duration_label(s) for s in (45, 130, 120, 3900, 7200)] == \
        ["45 s", "2 min 10 s", "2 min", "1 h 5 min", "2 h"]


def test_only_eligible_mechanics_are_offered_online_first(app, login):
    free_offline = UserFactory("mechanic", full_name="Abe Offline")
    free_online = UserFactory("mechanic", full_name="Zoe Online")
    busy = UserFactory("mechanic", full_name="Bea Busy")
    AcceptedSessionFactory(UserFactory("customer"), busy)
    UserFactory("mechanic", full_name="Una Unapproved", approved=False)
    suspended = UserFactory("mechanic", full_name="Sid Suspended")
    suspended.status = "suspended"
    UserFactory("customer", full_name="Cam Customer")
    db.session.commit()
    unattended_session()
    go_online(free_online.id)
    assert [(m.full_name, m.online) for m in admin_dashboard.eligible_mechanics()] == \
        [("Zoe Online", True), ("Abe Offline", False)]
    page = login(UserFactory("admin")).get("/admin/queue").get_data(as_text=True)
    assert f'<optgroup label="Online now"><option value="{free_online.id}">Zoe Online · online</option>' in page
    assert f'<option value="{free_offline.id}">Abe Offline</option>' in page
    for name in ("Bea Busy", "Una Unapproved", "Sid Suspended", "Cam Customer"):
        assert name not in page


def test_admin_assigns_an_unattended_request_to_a_free_mechanic(app, login):
    admin = UserFactory("admin")
    mechanic_id = UserFactory("mechanic", full_name="Raj Spanner").id
    session_id = unattended_session()
    request_id = request_of(session_id).id
    response = login(admin).post(f"/admin/requests/{request_id}/assign", data={"mechanic_id": mechanic_id},
                                 headers={"Referer": "http://localhost/admin/queue"})
    assert response.status_code == 303 and response.headers["Location"] == "/admin/queue"
    page = login(admin).get("/admin/queue").get_data(as_text=True)
    assert "Nobody is waiting." in page
    db.session.expire_all()
    session = db.session.get(ConsultSession, session_id)
    assert (session.status, session.mechanic_id) == ("waiting", mechanic_id)
    assert timeline.for_session(session_id)[-1].kind == "assigned"
    (entry,) = audit_rows("request.assign")
    assert (entry.actor_id, entry.target_type, entry.target_id) == (admin.id, "request", request_id)
    assert entry.before == {"status": "unattended", "mechanic_id": None}
    assert entry.after == {"status": "accepted", "mechanic_id": mechanic_id}


def test_assigning_from_the_dashboard_returns_to_it_with_a_message(app, login):
    admin = UserFactory("admin")
    mechanic_id = UserFactory("mechanic", full_name="Raj Spanner").id
    session_id = unattended_session()
    response = login(admin).post(f"/admin/requests/{request_of(session_id).id}/assign",
                                 data={"mechanic_id": mechanic_id},
                                 headers={"Referer": "http://localhost/admin/"}, follow_redirects=True)
    assert response.request.path == "/admin/"
    assert f"Session #{session_id} assigned to Raj Spanner." in response.get_data(as_text=True)


def test_admin_cannot_assign_a_busy_mechanic(app, login):
    admin = UserFactory("admin")
    mechanic = UserFactory("mechanic")
    AcceptedSessionFactory(UserFactory("customer"), mechanic)
    session_id = unattended_session()
    page = login(admin).post(f"/admin/requests/{request_of(session_id).id}/assign",
                             data={"mechanic_id": mechanic.id}, follow_redirects=True).get_data(as_text=True)
    assert "That mechanic is busy in another session right now." in page
    assert request_of(session_id).status == "unattended"
    assert audit_rows("request.assign") == []


def test_assigning_a_request_already_taken_says_so(app, login):
    admin = UserFactory("admin")
    first, second = UserFactory("mechanic"), UserFactory("mechanic")
    session_id = unattended_session()
    request_id = request_of(session_id).id
    lifecycle.accept_request(request_id, first.id)
    db.session.commit()
    page = login(admin).post(f"/admin/requests/{request_id}/assign", data={"mechanic_id": second.id},
                             follow_redirects=True).get_data(as_text=True)
    assert "Another mechanic already accepted this request." in page
    assert request_of(session_id).mechanic_id == first.id


def test_an_unapproved_mechanic_cannot_be_assigned(app, login):
    pending = UserFactory("mechanic", approved=False)
    session_id = unattended_session()
    page = login(UserFactory("admin")).post(f"/admin/requests/{request_of(session_id).id}/assign",
                                            data={"mechanic_id": pending.id},
                                            follow_redirects=True).get_data(as_text=True)
    assert "Only approved mechanics can take requests." in page
    assert request_of(session_id).status == "unattended"


@pytest.mark.parametrize("action", ["assign", "extend", "cancel"])
def test_an_empty_post_changes_nothing(app, login, action):
    session_id = unattended_session()
    request_id = request_of(session_id).id
    response = login(UserFactory("admin")).post(f"/admin/requests/{request_id}/{action}", data={})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    expected = {"assign": "Choose a mechanic.", "extend": "Choose how much more time.",
                "cancel": "Give a reason for cancelling."}[action]
    assert expected in page
    request = request_of(session_id)
    assert (request.status, request.extended_until) == ("unattended", None)
    assert db.session.scalar(db.select(db.func.count(AuditEntry.id))) == 0


def test_extend_moves_the_expiry(app, login, at_t0):
    admin = UserFactory("admin")
    session_id = unattended_session()
    request_id = request_of(session_id).id
    clock.set(T0 + timedelta(minutes=100))
    response = login(admin).post(f"/admin/requests/{request_id}/extend",
                                 data={"minutes": "60", "reason": "Honda specialist back at noon"},
                                 follow_redirects=True)
    assert "now expires at 12:00 UTC" in response.get_data(as_text=True)
    request = request_of(session_id)
    assert request.extended_until == T0 + timedelta(hours=3)
    event = timeline.for_session(session_id)[-1]
    assert (event.kind, event.actor_id) == ("extended_request", admin.id)
    assert "Honda specialist back at noon" in event.detail
    (entry,) = audit_rows("request.extend")
    assert entry.before == {"extended_until": None, "expires_at": "2026-03-10 11:00:00"}
    assert entry.after["extended_until"] == "2026-03-10 12:00:00"
    assert entry.reason == "Honda specialist back at noon"

    assert not lifecycle.expire_request(request_id, now=T0 + timedelta(hours=2, minutes=1))
    db.session.commit()
    assert request_of(session_id).status == "unattended"
    assert lifecycle.expire_request(request_id, now=T0 + timedelta(hours=3, seconds=1))
    db.session.commit()
    assert request_of(session_id).status == "expired"


def test_extending_twice_adds_to_the_deadline_and_a_late_extension_counts_from_now(app, at_t0):
    session_id = unattended_session()
    request_id = request_of(session_id).id
    admin_id = UserFactory("admin").id
    lifecycle.extend_request(request_id, 30, admin_id)
    lifecycle.extend_request(request_id, 30, admin_id)
    db.session.commit()
    assert request_of(session_id).extended_until == T0 + timedelta(hours=3)
    with pytest.raises(Exception, match="30 or 60"):
        lifecycle.extend_request(request_id, 45, admin_id)
    lifecycle.expire_request(request_id, now=T0 + timedelta(hours=3))
    db.session.commit()
    with pytest.raises(Exception, match="no longer waiting"):
        lifecycle.extend_request(request_id, 30, admin_id)


def ledger_balanced(session_id):
    sums = db.session.execute(db.select(LedgerEntry.txn_id, db.func.sum(LedgerEntry.amount_cents))
                              .where(LedgerEntry.session_id == session_id).group_by(LedgerEntry.txn_id)).all()
    return sums and all(total == 0 for _, total in sums)


def test_cancel_refunds_in_full(app, login):
    admin = UserFactory("admin")
    customer = UserFactory("customer")
    session_id = unattended_session(customer)
    request_id = request_of(session_id).id
    response = login(admin).post(f"/admin/requests/{request_id}/cancel",
                                 data={"reason": "Customer asked by phone"}, follow_redirects=True)
    assert f"Session #{session_id} cancelled; $9.99 back to the customer." in response.get_data(as_text=True)
    db.session.expire_all()
    session = db.session.get(ConsultSession, session_id)
    request = db.session.get(SessionRequest, request_id)
    assert (session.status, session.end_reason) == ("cancelled", "admin_cancelled")
    assert (request.status, request.close_reason) == ("cancelled", "admin_cancelled")
    assert money.escrow_balance(session_id) == 0
    assert ledger_balanced(session_id)
    refunds = db.session.scalars(db.select(LedgerEntry).where(
        LedgerEntry.session_id == session_id, LedgerEntry.account == money.CUSTOMER, LedgerEntry.kind == "refund"))
    assert sum(r.amount_cents for r in refunds) == 999
    assert any(e.detail == "Cancelled by admin: Customer asked by phone" for e in timeline.for_session(session_id))
    (entry,) = audit_rows("session.cancel")
    assert (entry.actor_id, entry.target_type, entry.target_id, entry.reason) == \
        (admin.id, "session", session_id, "Customer asked by phone")
    assert entry.before == {"status": "pending", "request_status": "unattended", "refunded_cents": 0}
    assert entry.after == {"status": "cancelled", "request_status": "cancelled", "refunded_cents": 999}


def test_cancel_by_admin_works_for_a_waiting_session_and_frees_the_mechanic(app):
    mechanic = UserFactory("mechanic")
    session = AcceptedSessionFactory(UserFactory("customer"), mechanic)
    assert lifecycle.cancel_by_admin(session.id, UserFactory("admin").id, "Mechanic unreachable")
    db.session.commit()
    db.session.expire_all()
    session = db.session.get(ConsultSession, session.id)
    assert session.status == "cancelled" and session.current_request.status == "cancelled"
    assert money.escrow_balance(session.id) == 0 and ledger_balanced(session.id)
    assert lifecycle.mechanic_busy(mechanic.id) is None


def test_cancel_by_admin_refuses_a_live_session_and_a_missing_reason(app):
    mechanic = UserFactory("mechanic")
    session = AcceptedSessionFactory(UserFactory("customer"), mechanic, live=True)
    admin_id = UserFactory("admin").id
    with pytest.raises(Exception, match="only a pending or waiting session"):
        lifecycle.cancel_by_admin(session.id, admin_id, "Too late")
    with pytest.raises(Exception, match="Give a reason"):
        lifecycle.cancel_by_admin(session.id, admin_id, "  ")


def test_the_live_queue_message_carries_the_queue_and_the_count(app):
    from autodoctor.blueprints.admin.presenters import present_queue

    session_id = unattended_session()
    (message,) = present_queue(request_id=request_of(session_id).id, session_id=session_id)
    assert (message.channel, message.event) == ("admin", "queue")
    assert 'id="admin-queue" class="queue" hx-swap-oob="true"' in message.data
    assert 'id="unattended-count" class="tile-value" hx-swap-oob="true">1<' in message.data
    assert f'id="queue-request-{request_of(session_id).id}"' in message.data


def test_admin_pages_are_for_admins_only(app, login):
    for path in ("/admin/", "/admin/queue"):
        assert login(UserFactory("mechanic")).get(path).status_code == 403
        assert login(UserFactory("customer")).get(path).status_code == 403


def test_dashboard_numbers_and_queue_on_postgres(pg_app):
    clock.set(T0)
    admin_id = UserFactory("admin").id
    fast = UserFactory("mechanic", full_name="Fast Fay")
    UserFactory("mechanic", full_name="Free Fred")
    accepted = PaidSessionFactory(UserFactory("customer"))
    waiting = PaidSessionFactory(UserFactory("customer"))
    db.session.commit()
    clock.set(T0 + timedelta(seconds=130))
    lifecycle.accept_request(accepted.current_request.id, fast.id, assigned_by=admin_id)
    db.session.commit()
    clock.set(T0 + timedelta(minutes=6))
    sweep.run_sweep()
    go_online(fast.id)
    metrics = admin_dashboard.metrics()
    assert (metrics.sessions_today, metrics.unattended_now, metrics.mechanics_online) == (2, 1, 1)
    assert (metrics.accept_seconds, metrics.revenue_cents) == (130, 1998)
    assert [m.full_name for m in admin_dashboard.eligible_mechanics()] == ["Free Fred"]  # Fay is busy
    assert [i.request.session_id for i in admin_dashboard.queue()] == [waiting.id]
    lifecycle.extend_request(waiting.current_request.id, 60, admin_id)
    db.session.commit()
    assert not lifecycle.expire_request(waiting.current_request.id, now=T0 + timedelta(hours=2, minutes=30))
    assert lifecycle.cancel_by_admin(waiting.id, admin_id, "Duplicate request")
    db.session.commit()
    assert money.escrow_balance(waiting.id) == 0 and ledger_balanced(waiting.id)


def test_an_extension_and_the_expiry_racing_never_both_win_on_postgres(pg_app):
    from tests.services.test_lifecycle import _race

    admin_id = UserFactory("admin").id
    clock.set(T0)
    sessions = [PaidSessionFactory(UserFactory("customer")) for _ in range(4)]
    db.session.commit()
    due = T0 + timedelta(hours=2, seconds=1)
    clock.set(due)
    for session in sessions:
        request_id = session.current_request.id
        results = _race(pg_app, 2, lambda i, rid=request_id: lifecycle.expire_request(rid, now=due) if i == 0
                        else lifecycle.extend_request(rid, 30, admin_id))
        expired, extended = results
        request = request_of(session.id)
        if expired is True:
            assert isinstance(extended, Exception) and request.status == "expired", results
            assert request.extended_until is None
        else:
            assert expired is False and request.status == "pending", results
            assert request.extended_until == due + timedelta(minutes=30)
