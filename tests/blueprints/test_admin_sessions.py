"""Admin session detail: what happened in a session, and the interventions (force end, cancel,
reassign, refund), each audited; the read-only observer."""
from collections import defaultdict

import pytest

from autodoctor.extensions import db
from autodoctor.models import AuditEntry, ConsultSession, LedgerEntry, SessionRequest
from autodoctor.services import chat, lifecycle, money
from tests.factories import AcceptedSessionFactory, PaidSessionFactory, UserFactory


def completed_session(customer=None, mechanic=None, lines=()):
    customer = customer or UserFactory("customer", full_name="Cora Customer")
    mechanic = mechanic or UserFactory("mechanic", full_name="Max Mechanic")
    session = AcceptedSessionFactory(customer, mechanic, live=True)
    for sender, body in lines:
        chat.post_message(session.id, (customer if sender == "c" else mechanic).id, body)
        db.session.commit()
    lifecycle.end_session(session.id, mechanic.id, "Replace the spark plugs.")
    db.session.commit()
    return db.session.get(ConsultSession, session.id)


def audit_rows(session_id, action=None):
    query = db.select(AuditEntry).where(AuditEntry.target_type == "session", AuditEntry.target_id == session_id)
    if action:
        query = query.where(AuditEntry.action == action)
    return db.session.scalars(query.order_by(AuditEntry.id)).all()


def assert_balanced(session_id):
    totals = defaultdict(int)
    for entry in db.session.scalars(db.select(LedgerEntry).where(LedgerEntry.session_id == session_id)):
        totals[entry.txn_id] += entry.amount_cents
    assert totals and all(v == 0 for v in totals.values()), totals


def test_session_page_shows_everything_that_happened(app, login):
    admin = UserFactory("admin")
    session = completed_session(lines=[("c", "Hello there"), ("m", "Hi, what is the noise?")])
    page = login(admin).get(f"/admin/sessions/{session.id}").get_data(as_text=True)
    assert f"Session #{session.id}" in page
    assert "Cora Customer" in page and "Max Mechanic" in page
    assert "Hello there" in page and "Hi, what is the noise?" in page
    assert page.index("Hello there") < page.index("Hi, what is the noise?")
    assert "Check engine light is on" in page
    assert "Ended by the mechanic" in page
    assert "Replace the spark plugs." in page
    assert "platform_fee" in page and "mechanic_earning" in page


def test_transcript_of_hundreds_of_lines_is_one_query(app, login):
    from sqlalchemy import event

    admin = UserFactory("admin")
    session = completed_session(lines=[("c" if i % 2 else "m", f"line {i}") for i in range(120)])
    client = login(admin)
    statements = []

    def count(conn, cursor, statement, *args):
        if "chat_messages" in statement:
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        page = client.get(f"/admin/sessions/{session.id}").get_data(as_text=True)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert "line 0" in page and "line 119" in page
    assert "120 lines" in page
    assert len(statements) == 1


def test_partial_then_full_refund_of_a_completed_session(app, login):
    admin = UserFactory("admin")
    session = completed_session()
    client = login(admin)
    paid = -sum(e.amount_cents for e in money.session_entries(session.id) if e.account == "customer")
    platform_before = money._sum(LedgerEntry.session_id == session.id, LedgerEntry.account == "platform")
    mechanic_before = money._sum(LedgerEntry.session_id == session.id,
                                 LedgerEntry.account == money.mechanic_account(session.mechanic_id))

    response = client.post(f"/admin/sessions/{session.id}/refund",
                           data={"refund-scope": "partial", "refund-amount": "5.00", "refund-reason": "Bad audio"})
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Refunded $5.00 ($5.00 to the card)." in page
    assert_balanced(session.id)
    platform = money._sum(LedgerEntry.session_id == session.id, LedgerEntry.account == "platform")
    mechanic = money._sum(LedgerEntry.session_id == session.id,
                          LedgerEntry.account == money.mechanic_account(session.mechanic_id))
    assert (platform_before - platform) + (mechanic_before - mechanic) == 500
    assert platform_before - platform == (500 * platform_before * 2 + paid) // (paid * 2)
    assert money.escrow_balance(session.id) == 0
    assert money.session_refundable(session.id) == paid - 500
    [row] = audit_rows(session.id, "session.refund")
    assert row.reason == "Bad audio" and row.actor_id == admin.id
    assert row.before["refunded_cents"] == 0 and row.after["refunded_cents"] == 500
    assert any(e.kind == "refunded" and e.detail == "Refunded $5.00 by an admin ($5.00 to the card)"
               for e in lifecycle_events(session.id))

    response = client.post(f"/admin/sessions/{session.id}/refund",
                           data={"refund-scope": "full", "refund-reason": "Goodwill"})
    assert response.status_code == 303
    assert_balanced(session.id)
    assert money.session_refundable(session.id) == 0
    assert money._sum(LedgerEntry.session_id == session.id, LedgerEntry.account == "platform") == 0
    assert money._sum(LedgerEntry.session_id == session.id, LedgerEntry.account.like("mechanic:%")) == 0
    assert money.card_refundable(session.intake and session_payment(session).id) == 0
    assert session_payment(session).status == "refunded"
    page = client.get(f"/admin/sessions/{session.id}").get_data(as_text=True)
    assert "Nothing is left to refund" in page
    assert len(audit_rows(session.id, "session.refund")) == 2


def test_odd_cent_refunds_balance_to_the_cent(app, login):
    admin = UserFactory("admin")
    session = completed_session()
    client = login(admin)
    for amount in ("0.01", "0.07", "1.33", "2.99"):
        assert client.post(f"/admin/sessions/{session.id}/refund", data={
            "refund-scope": "partial", "refund-amount": amount, "refund-reason": "Rounding check"}).status_code == 303
    assert_balanced(session.id)
    refunded = sum(e.amount_cents for e in money.session_entries(session.id)
                   if e.account == "customer" and e.kind == "refund")
    assert refunded == 1 + 7 + 133 + 299


@pytest.mark.parametrize("data, message", [
    ({"refund-scope": "partial", "refund-amount": "5.00"}, "Give a reason."),
    ({"refund-scope": "partial", "refund-amount": "abc", "refund-reason": "x"}, "Enter an amount in dollars and cents"),
    ({"refund-scope": "partial", "refund-amount": "0", "refund-reason": "x"}, "greater than $0.00"),
    ({"refund-scope": "partial", "refund-amount": "999.00", "refund-reason": "x"}, "can still be refunded"),
    ({}, "Give a reason."),
])
def test_refund_refusals_change_nothing(app, login, data, message):
    admin = UserFactory("admin")
    session = completed_session()
    rows = len(money.session_entries(session.id))
    response = login(admin).post(f"/admin/sessions/{session.id}/refund", data=data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert len(money.session_entries(session.id)) == rows
    assert audit_rows(session.id) == []


def test_too_big_refund_names_the_maximum(app, login):
    admin = UserFactory("admin")
    session = completed_session()
    most = money.session_refundable(session.id)
    page = login(admin).post(f"/admin/sessions/{session.id}/refund", data={
        "refund-scope": "partial", "refund-amount": f"{(most + 1) / 100:.2f}", "refund-reason": "x"}).get_data(True)
    assert f"At most ${most / 100:,.2f} can still be refunded." in page


def test_a_live_session_cannot_be_refunded(app, login):
    admin = UserFactory("admin")
    session = AcceptedSessionFactory(UserFactory("customer"), UserFactory("mechanic"), live=True)
    response = login(admin).post(f"/admin/sessions/{session.id}/refund", data={
        "refund-scope": "partial", "refund-amount": "1.00", "refund-reason": "x"}, follow_redirects=True)
    assert "Only a completed or cancelled session can be refunded" in response.get_data(as_text=True)
    assert audit_rows(session.id) == []


def test_force_end_a_live_session(app, login):
    admin = UserFactory("admin")
    session = AcceptedSessionFactory(UserFactory("customer"), UserFactory("mechanic"), live=True)
    client = login(admin)
    assert client.post(f"/admin/sessions/{session.id}/end", data={}).status_code == 422
    db.session.expire_all()
    assert db.session.get(ConsultSession, session.id).status == "live"
    response = client.post(f"/admin/sessions/{session.id}/end", data={"end-reason": "Abusive language"})
    assert response.status_code == 303
    db.session.expire_all()
    session = db.session.get(ConsultSession, session.id)
    assert (session.status, session.end_reason) == ("completed", "admin_ended")
    assert money.escrow_balance(session.id) == 0
    assert_balanced(session.id)
    assert any(e.detail == "Ended by admin: Abusive language" for e in lifecycle_events(session.id))
    [row] = audit_rows(session.id, "session.force_end")
    assert row.before["status"] == "live" and row.after["status"] == "completed"
    assert row.reason == "Abusive language"
    # Again: nothing to end any more.
    page = client.post(f"/admin/sessions/{session.id}/end", data={"end-reason": "again"},
                       follow_redirects=True).get_data(as_text=True)
    assert "Only a live or waiting session can be ended" in page
    assert len(audit_rows(session.id, "session.force_end")) == 1


def test_force_end_a_waiting_session_cancels_it_with_a_refund(app, login):
    admin = UserFactory("admin")
    session = AcceptedSessionFactory(UserFactory("customer"), UserFactory("mechanic"))
    page = login(admin).post(f"/admin/sessions/{session.id}/end", data={"end-reason": "Mechanic unreachable"},
                             follow_redirects=True).get_data(as_text=True)
    assert "ended before it started; the customer was refunded in full." in page
    db.session.expire_all()
    session = db.session.get(ConsultSession, session.id)
    assert (session.status, session.end_reason) == ("cancelled", "admin_cancelled")
    assert money.escrow_balance(session.id) == 0
    [row] = audit_rows(session.id, "session.force_end")
    assert (row.before["status"], row.after["status"]) == ("waiting", "cancelled")
    assert row.before["escrow_cents"] > 0 and row.after["escrow_cents"] == 0


def test_cancel_a_waiting_session_with_a_full_refund(app, login):
    admin = UserFactory("admin")
    session = AcceptedSessionFactory(UserFactory("customer"), UserFactory("mechanic"))
    client = login(admin)
    assert client.post(f"/admin/sessions/{session.id}/cancel", data={}).status_code == 422
    response = client.post(f"/admin/sessions/{session.id}/cancel", data={"cancel-reason": "Customer called us"})
    assert response.status_code == 303
    db.session.expire_all()
    session = db.session.get(ConsultSession, session.id)
    assert session.status == "cancelled"
    assert money.escrow_balance(session.id) == 0
    assert_balanced(session.id)
    [row] = audit_rows(session.id, "session.cancel")
    assert row.before["status"] == "waiting" and row.after["status"] == "cancelled"
    assert row.before["escrow_cents"] > 0 and row.after["escrow_cents"] == 0


def test_cancel_a_pending_session_closes_its_request(app, login):
    admin = UserFactory("admin")
    session = PaidSessionFactory(UserFactory("customer"))
    db.session.commit()
    response = login(admin).post(f"/admin/sessions/{session.id}/cancel", data={"cancel-reason": "Duplicate booking"},
                                 follow_redirects=True)
    assert f"Session #{session.id} cancelled; the customer was refunded in full." in response.get_data(as_text=True)
    db.session.expire_all()
    request = db.session.scalar(db.select(SessionRequest).where(SessionRequest.session_id == session.id))
    assert request.status == "cancelled"
    assert money.escrow_balance(session.id) == 0
    assert audit_rows(session.id, "session.cancel")[0].reason == "Duplicate booking"


def test_cancel_refused_for_a_completed_session(app, login):
    admin = UserFactory("admin")
    session = completed_session()
    page = login(admin).post(f"/admin/sessions/{session.id}/cancel", data={"cancel-reason": "x"},
                             follow_redirects=True).get_data(as_text=True)
    assert "Only a session that has not started can be cancelled." in page
    assert audit_rows(session.id) == []


def test_reassign_a_waiting_session_to_a_free_approved_mechanic(app, login):
    admin = UserFactory("admin")
    old = UserFactory("mechanic", full_name="Old Mech")
    new = UserFactory("mechanic", full_name="New Mech")
    busy = UserFactory("mechanic", full_name="Busy Mech")
    AcceptedSessionFactory(UserFactory("customer"), busy)
    session = AcceptedSessionFactory(UserFactory("customer"), old)
    customer_id = session.customer_id
    for user_id in (customer_id, old.id):  # both in the room, but the old mechanic has to go
        lifecycle.join_room(session.id, user_id)
        db.session.commit()
    client = login(admin)
    page = client.get(f"/admin/sessions/{session.id}").get_data(as_text=True)
    assert "New Mech" in page and "Busy Mech (" not in page
    assert client.post(f"/admin/sessions/{session.id}/reassign",
                       data={"reassign-mechanic_id": new.id}).status_code == 422
    broker = app.extensions["broker"]
    with broker.subscribe([f"user:{old.id}", f"user:{new.id}"]) as dashboards:
        response = client.post(f"/admin/sessions/{session.id}/reassign",
                               data={"reassign-mechanic_id": new.id, "reassign-reason": "Old mechanic is sick"})
        assert response.status_code == 303
        pushed = []
        while (message := dashboards.get(timeout=2)) is not None:
            pushed.append(message)
    # Both dashboards hear about it: the new mechanic's shows the session, the old one's drops it.
    active = {m.channel: m.data for m in pushed if m.event == "active"}
    assert f"/room/{session.id}" in active[f"user:{new.id}"]
    assert f"/room/{session.id}" not in active[f"user:{old.id}"]
    db.session.expire_all()
    session = db.session.get(ConsultSession, session.id)
    assert (session.status, session.mechanic_id) == ("waiting", new.id)
    request = db.session.scalar(db.select(SessionRequest).where(SessionRequest.session_id == session.id))
    assert (request.status, request.mechanic_id) == ("accepted", new.id)
    assert lifecycle.mechanic_busy(old.id) is None
    [row] = audit_rows(session.id, "session.reassign")
    assert (row.before["mechanic_id"], row.after["mechanic_id"]) == (old.id, new.id)
    assert any(e.kind == "reassigned" and "Old Mech" in e.detail and "New Mech" in e.detail
               for e in lifecycle_events(session.id))
    # The new mechanic comes in: the session goes live with them (the old one no longer counts).
    lifecycle.join_room(session.id, new.id)
    db.session.commit()
    assert lifecycle.maybe_go_live(session.id)
    db.session.commit()


def test_reassign_refuses_a_busy_mechanic_and_a_live_session(app, login):
    admin = UserFactory("admin")
    busy = UserFactory("mechanic")
    AcceptedSessionFactory(UserFactory("customer"), busy)
    session = AcceptedSessionFactory(UserFactory("customer"), UserFactory("mechanic"))
    client = login(admin)
    page = client.post(f"/admin/sessions/{session.id}/reassign",
                       data={"reassign-mechanic_id": busy.id, "reassign-reason": "x"},
                       follow_redirects=True).get_data(as_text=True)
    assert "is busy in another session" in page
    live = AcceptedSessionFactory(UserFactory("customer"), UserFactory("mechanic"), live=True)
    free = UserFactory("mechanic")
    page = client.post(f"/admin/sessions/{live.id}/reassign",
                       data={"reassign-mechanic_id": free.id, "reassign-reason": "x"},
                       follow_redirects=True).get_data(as_text=True)
    assert "Only a session waiting to start can be reassigned." in page
    assert "A live session cannot change mechanic" in page
    assert audit_rows(session.id) == [] and audit_rows(live.id) == []


def test_a_second_refund_of_the_same_amount_gets_its_own_provider_key(app, login, monkeypatch):
    from autodoctor.integrations import stripe_gateway
    from autodoctor.services import payments

    admin = UserFactory("admin")
    session = completed_session()
    payment = session_payment(session)
    payment.provider = "stripe"
    db.session.commit()
    keys = []
    monkeypatch.setattr(stripe_gateway, "refund", lambda intent, cents, key: keys.append((cents, key)))
    monkeypatch.setattr(payments.jobs, "enqueue", lambda fn, *args: fn(*args))
    client = login(admin)
    for _ in range(2):
        assert client.post(f"/admin/sessions/{session.id}/refund", data={
            "refund-scope": "partial", "refund-amount": "1.00", "refund-reason": "x"}).status_code == 303
    assert [cents for cents, _ in keys] == [100, 100]
    assert keys[0][1] != keys[1][1]


def test_observe_page_is_read_only(app, login):
    admin = UserFactory("admin")
    customer = UserFactory("customer")
    session = AcceptedSessionFactory(customer, UserFactory("mechanic"), live=True)
    chat.post_message(session.id, customer.id, "Is anyone there?")
    db.session.commit()
    page = login(admin).get(f"/admin/sessions/{session.id}/observe").get_data(as_text=True)
    assert "Is anyone there?" in page
    assert "chat-form" not in page and "ws-connect" not in page
    assert f"/admin/sessions/{session.id}/observe/stream" in page
    assert lifecycle.present_user_ids(session.id) == {session.customer_id, session.mechanic_id}


def test_observe_stream_sends_status_and_transcript_then_live_lines(app, login):
    admin = UserFactory("admin")
    customer = UserFactory("customer")
    session = AcceptedSessionFactory(customer, UserFactory("mechanic"), live=True)
    chat.post_message(session.id, customer.id, "First line")
    db.session.commit()
    response = login(admin).get(f"/admin/sessions/{session.id}/observe/stream", buffered=False)
    chunks = iter(response.response)
    text = "".join(next(chunks).decode() for _ in range(3))
    assert "event: observe" in text and "event: chat" in text and "First line" in text
    chat.post_message(session.id, customer.id, "Second line")
    db.session.commit()
    assert "Second line" in next(chunks).decode()
    response.close()


def test_non_admins_get_nothing(app, login):
    session = completed_session()
    for role in ("customer", "mechanic"):
        client = login(UserFactory(role))
        assert client.get(f"/admin/sessions/{session.id}").status_code == 403
        assert client.post(f"/admin/sessions/{session.id}/refund", data={
            "refund-scope": "full", "refund-reason": "x"}).status_code == 403
    assert money.session_refundable(session.id) > 0


def session_payment(session):
    from autodoctor.models import Payment

    return db.session.scalar(db.select(Payment).where(Payment.intake_id == session.intake_id))


def lifecycle_events(session_id):
    from autodoctor.services import timeline

    return timeline.for_session(session_id)


def test_concurrent_refunds_never_exceed_what_was_paid(pg_app):
    """Two admins refund the same session at the same moment, on Postgres: the session row
    lock makes the second see the first; together they never give back more than was paid."""
    import threading

    from autodoctor.services import admin_sessions
    from autodoctor.services.audit import Actor
    from autodoctor.services.errors import ServiceError

    with pg_app.test_request_context():
        admin_id = UserFactory("admin").id
        session = completed_session()
        session_id, paid = session.id, money.session_refundable(session.id)
        db.session.commit()
        db.session.remove()
    amount = paid // 2 + 1  # two of these would be more than was paid
    start, results = threading.Barrier(4), []

    def refund():
        with pg_app.test_request_context():
            start.wait(timeout=30)
            try:
                results.append(admin_sessions.refund(session_id, amount, Actor(admin_id), "race")[0])
                db.session.commit()
            except ServiceError as exc:
                db.session.rollback()
                results.append(exc.message)

    threads = [threading.Thread(target=refund) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results.count(amount) == 1, results
    assert all(r == amount or "can still be refunded" in r for r in results)
    with pg_app.test_request_context():
        assert money.session_refundable(session_id) == paid - amount
        assert_balanced(session_id)
        assert len(audit_rows(session_id, "session.refund")) == 1


def test_the_room_socket_of_a_mechanic_taken_off_the_session_closes_and_the_others_stay():
    """After a reassign the old mechanic's open room socket ends; the customer's carries on."""
    from autodoctor.blueprints.room.routes import _forward
    from autodoctor.realtime import ROOM_REMOVED, Message

    class Socket:
        connected = True

        def __init__(self):
            self.sent, self.closed = [], None

        def send(self, data):
            self.sent.append(data)

        def close(self, code, reason):
            self.closed, self.connected = code, False

    class Quiet:  # the subscription: nothing more arrives
        def get(self, timeout=None):
            Socket.connected = False

    replay = [Message("room:1", ROOM_REMOVED, "7"), Message("room:1", "chat", "<p>still here</p>", id="msg-1")]
    old_mechanic, customer = Socket(), Socket()
    _forward(old_mechanic, Quiet(), list(replay), 7)
    _forward(customer, Quiet(), list(replay), 3)
    assert (old_mechanic.closed, old_mechanic.sent) == (1008, [])
    assert (customer.closed, customer.sent) == (None, ["<p>still here</p>"])
