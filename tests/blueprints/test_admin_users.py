"""Admin user management: the person's page; suspend, ban and reactivate (logged out
everywhere, streams closed, mechanics offline, the reason shown at login); verify e-mail;
password reset link; notes; a free session as account credit spent at checkout; every action
in the audit log with the values before and after."""
import sqlalchemy as sa

from autodoctor.extensions import db
from autodoctor.models import AuditEntry, ConsultSession, MechanicProfile, Notification, OutboxEmail, User, UserNote
from autodoctor.realtime import ACCOUNT_CLOSED, Message, account_channel
from autodoctor.services import admin_users, money, presence
from autodoctor.services.audit import Actor
from tests.blueprints.test_webhooks import INTAKE
from tests.factories import PASSWORD, PaidSessionFactory, UserFactory


def text(response):
    return response.get_data(as_text=True)


def audit_rows(action, user_id=None):
    query = db.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
    if user_id is not None:
        query = query.where(AuditEntry.target_type == "user", AuditEntry.target_id == user_id)
    return db.session.scalars(query).all()


def fresh(user_id):
    db.session.expire_all()
    return db.session.get(User, user_id)


def try_login(app, user, password=PASSWORD):
    client = app.test_client()
    return client, client.post("/login", data={"email": user.email, "password": password})


# --- the page ---------------------------------------------------------------------------------

def test_user_page_shows_a_customer_with_credit_sessions_and_payments(app, login):
    admin = UserFactory("admin")
    customer = UserFactory("customer", full_name="Ada Driver", city="Toronto", country="CA")
    session = PaidSessionFactory(customer)
    db.session.commit()
    page = text(login(admin).get(f"/admin/users/{customer.id}"))
    assert "Ada Driver" in page and customer.email in page and "Toronto, CA" in page
    assert f'href="/admin/sessions/{session.id}"' in page and "Quick Chat" in page
    assert 'id="credit-balance">$0.00' in page and "not verified" in page
    assert "Grant free session" in page and "Suspend" in page and "Ban" in page and "Reactivate" not in page


def test_user_page_shows_a_mechanic_profile_and_presence(app, login):
    admin = UserFactory("admin")
    mechanic = UserFactory("mechanic", full_name="Raj Spanner", specialties="Brakes")
    db.session.commit()
    client = login(admin)
    page = text(client.get(f"/admin/users/{mechanic.id}"))
    assert "Raj Spanner" in page and "Presence" in page and "Brakes" in page and "approved" in page
    assert "Grant free session" not in page and "Account credit" not in page
    assert client.get("/admin/users/999999").status_code == 404


def test_an_admin_cannot_suspend_or_ban_themselves(app, login):
    admin = UserFactory("admin")
    db.session.commit()
    client = login(admin)
    assert "cannot be suspended or banned from here" in text(client.get(f"/admin/users/{admin.id}"))
    for verb in ("suspend", "ban"):
        response = client.post(f"/admin/users/{admin.id}/{verb}", data={f"{verb}-reason": "testing"},
                               follow_redirects=True)
        assert "You cannot suspend or ban your own account." in text(response)
    assert fresh(admin.id).status == "active" and audit_rows("user.suspend") == []
    assert client.get("/admin/").status_code == 200  # still logged in


# --- suspend / ban / reactivate -----------------------------------------------------------------

def test_suspend_logs_the_person_out_everywhere_and_reactivate_lets_them_back(app, login):
    admin = UserFactory("admin")
    customer = UserFactory("customer")
    db.session.commit()
    phone, laptop = login(customer), login(customer)
    assert phone.get("/customer/").status_code == 200
    admin_client = login(admin)

    empty = admin_client.post(f"/admin/users/{customer.id}/suspend", data={})
    assert empty.status_code == 422 and "Give a reason." in text(empty)
    assert fresh(customer.id).status == "active" and audit_rows("user.suspend") == []

    response = admin_client.post(f"/admin/users/{customer.id}/suspend",
                                 data={"suspend-reason": "Chargeback under review"})
    assert response.status_code == 303
    assert "is suspended and logged out everywhere" in text(admin_client.get(response.headers["Location"]))
    user = fresh(customer.id)
    assert (user.status, user.status_reason, user.auth_version) == ("suspended", "Chargeback under review", 1)

    for client in (phone, laptop):
        response = client.get("/customer/")
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")

    # The right password: told why; a wrong one: the usual message (no status leaks).
    _, response = try_login(app, customer)
    assert response.status_code == 422
    assert "Your account is suspended: Chargeback under review. Contact support@" in text(response)
    _, response = try_login(app, customer, "wrong-password-here")
    assert "do not match an account" in text(response) and "suspended" not in text(response)

    [entry] = audit_rows("user.suspend", customer.id)
    assert entry.actor_id == admin.id and entry.reason == "Chargeback under review"
    assert entry.before == {"status": "active", "status_reason": None, "auth_version": 0}
    assert entry.after == {"status": "suspended", "status_reason": "Chargeback under review", "auth_version": 1}

    again = admin_client.post(f"/admin/users/{customer.id}/suspend", data={"suspend-reason": "twice"},
                              follow_redirects=True)
    assert "This account is already suspended." in text(again) and len(audit_rows("user.suspend")) == 1

    response = admin_client.post(f"/admin/users/{customer.id}/reactivate",
                                 data={"reactivate-reason": "Chargeback resolved"})
    assert response.status_code == 303
    user = fresh(customer.id)
    assert (user.status, user.status_reason) == ("active", None)
    client, response = try_login(app, customer)
    assert response.status_code == 303 and client.get("/customer/").status_code == 200
    [entry] = audit_rows("user.reactivate", customer.id)
    assert entry.before["status"] == "suspended" and entry.after["status"] == "active"
    assert entry.reason == "Chargeback resolved"
    assert "user.reactivate" in text(admin_client.get(f"/admin/users/{customer.id}"))


def test_ban_a_mechanic_takes_them_offline_and_out(app, login):
    admin = UserFactory("admin")
    mechanic = UserFactory("mechanic")
    db.session.commit()
    mechanic_client = login(mechanic)
    assert mechanic_client.post("/mechanic/presence", data={"online": "1"}).status_code == 303
    presence.seen(mechanic.id)
    db.session.commit()
    assert presence.status(mechanic.id) == "online"

    response = login(admin).post(f"/admin/users/{mechanic.id}/ban", data={"ban-reason": "Fake certificates"})
    assert response.status_code == 303
    db.session.expire_all()
    profile = db.session.get(MechanicProfile, mechanic.id)
    assert (profile.online, profile.presence) == (False, "offline")
    assert mechanic.id not in presence.online_ids(include_busy=True)
    response = mechanic_client.get("/mechanic/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    _, response = try_login(app, mechanic)
    assert "Your account is banned: Fake certificates." in text(response)
    [entry] = audit_rows("user.ban", mechanic.id)
    assert (entry.before["status"], entry.after["status"]) == ("active", "banned")

    login(admin).post(f"/admin/users/{mechanic.id}/reactivate", data={"reactivate-reason": "Documents checked"})
    client, response = try_login(app, mechanic)
    assert response.status_code == 303 and client.get("/mechanic/").status_code == 200
    assert presence.status(mechanic.id) == "offline"  # back, but not taking requests until they say so


def read_chunks(response, limit=20):
    """The stream's chunks, and whether the server ended it (within `limit` chunks)."""
    chunks = []
    for chunk in response.response:
        chunks.append(chunk)
        if len(chunks) >= limit:
            return chunks, False
    return chunks, True


def test_suspending_ends_the_persons_open_streams(app, login):
    admin = UserFactory("admin")
    customer = UserFactory("customer")
    other = UserFactory("customer")
    db.session.commit()
    app.config["SSE_KEEPALIVE_SECONDS"] = 0.05
    headers = {"Accept": "text/event-stream"}
    mine = login(customer).get("/notifications/stream", headers=headers, buffered=False)
    theirs = login(other).get("/notifications/stream", headers=headers, buffered=False)
    assert mine.status_code == theirs.status_code == 200
    response = login(admin).post(f"/admin/users/{customer.id}/suspend", data={"suspend-reason": "Abuse"})
    assert response.status_code == 303
    chunks, ended = read_chunks(mine)
    assert ended and chunks[0] == b": connected\n\n"
    chunks, ended = read_chunks(theirs)
    assert not ended and b": keepalive\n\n" in chunks  # others' streams carry on
    theirs.close()


def test_the_account_closed_event_ends_only_that_persons_streams(app):
    from autodoctor.realtime import LocalBroker, stream

    broker = LocalBroker()
    mine = broker.subscribe(["user:1", account_channel(1)])
    theirs = broker.subscribe(["user:2", account_channel(2)])
    broker.publish(Message(channel=account_channel(1), event=ACCOUNT_CLOSED, data=""))
    assert list(stream(mine, keepalive=0.05)) == [": connected\n\n"]
    gen = stream(theirs, keepalive=0.05)
    assert next(gen) == ": connected\n\n" and next(gen) == ": keepalive\n\n"
    gen.close()
    assert broker.subscriber_count() == 0


# --- verify e-mail, notes -------------------------------------------------------------------

def test_verify_email_once(app, login):
    admin = UserFactory("admin")
    customer = UserFactory("customer")
    db.session.commit()
    client = login(admin)
    assert client.post(f"/admin/users/{customer.id}/verify-email", data={}).status_code == 422
    assert fresh(customer.id).email_verified_at is None
    response = client.post(f"/admin/users/{customer.id}/verify-email", data={"verify_email-confirm": "yes"},
                           follow_redirects=True)
    assert "The e-mail address is now verified." in text(response) and "verified" in text(response)
    assert fresh(customer.id).email_verified_at is not None
    response = client.post(f"/admin/users/{customer.id}/verify-email", data={"verify_email-confirm": "yes"},
                           follow_redirects=True)
    assert "already verified" in text(response)
    [entry] = audit_rows("user.verify_email", customer.id)
    assert entry.before == {"email_verified_at": None} and entry.after["email_verified_at"]


def test_notes_newest_first_with_author(app, login):
    admin = UserFactory("admin", full_name="Ann Admin")
    customer = UserFactory("customer")
    db.session.commit()
    client = login(admin)
    response = client.post(f"/admin/users/{customer.id}/notes", data={"note-body": "   "})
    assert response.status_code == 422 and "Write the note." in text(response)
    response = client.post(f"/admin/users/{customer.id}/notes", data={"note-body": "x" * 2001})
    assert response.status_code == 422
    for body in ("Called about a refund.", "Prefers e-mail."):
        assert client.post(f"/admin/users/{customer.id}/notes", data={"note-body": body}).status_code == 303
    page = text(client.get(f"/admin/users/{customer.id}"))
    assert page.index("Prefers e-mail.") < page.index("Called about a refund.") and "Ann Admin" in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UserNote)) == 2
    entries = audit_rows("user.note", customer.id)
    assert [e.after["body"] for e in entries] == ["Called about a refund.", "Prefers e-mail."]
    assert all(e.before is None for e in entries)
    # Notes are for admins only: the customer never sees them.
    assert "Prefers e-mail." not in text(login(customer).get("/customer/"))


def test_admin_sends_a_password_reset_link(app, login):
    admin = UserFactory("admin")
    customer = UserFactory("customer")
    db.session.commit()
    client = login(admin)
    assert client.post(f"/admin/users/{customer.id}/password-reset", data={}).status_code == 422
    response = client.post(f"/admin/users/{customer.id}/password-reset", data={"password_reset-confirm": "yes"},
                           follow_redirects=True)
    assert f"A password reset link is on its way to {customer.email}" in text(response)
    email = db.session.scalar(sa.select(OutboxEmail).where(OutboxEmail.to_address == customer.email))
    assert email.subject == "Reset your AutoDoctor password" and "/reset-password/" in email.body_text
    [entry] = audit_rows("user.password_reset", customer.id)
    assert entry.after["reset_link_sent_to"] == customer.email and entry.after["outbox_id"] == email.id


# --- free session -------------------------------------------------------------------------------

def test_a_free_session_is_credit_the_customer_is_told_about_and_spends_at_checkout(app, login):
    admin = UserFactory("admin")
    customer = UserFactory("customer")
    mechanic = UserFactory("mechanic")
    db.session.commit()
    client = login(admin)

    assert client.post(f"/admin/users/{customer.id}/free-session", data={}).status_code == 422
    response = client.post(f"/admin/users/{customer.id}/free-session",
                           data={"free_session-plan_code": "free", "free_session-reason": "Sorry"})
    assert response.status_code == 422 and "Not a valid choice" in text(response)
    response = client.post(f"/admin/users/{mechanic.id}/free-session",
                           data={"free_session-plan_code": "chat10", "free_session-reason": "Sorry"})
    assert response.status_code == 422 and "Only customers" in text(response)
    assert money.credit_balance(customer.id) == 0

    response = client.post(f"/admin/users/{customer.id}/free-session",
                           data={"free_session-plan_code": "chat10", "free_session-reason": "Lost connection"})
    assert response.status_code == 303
    assert money.credit_balance(customer.id) == 999
    assert 'id="credit-balance">$9.99' in text(client.get(f"/admin/users/{customer.id}"))
    notice = db.session.scalar(sa.select(Notification).where(Notification.user_id == customer.id))
    assert notice.text == ("You have a free Quick Chat: $9.99 of account credit, applied automatically at "
                           "checkout.")
    email = db.session.scalar(sa.select(OutboxEmail).where(OutboxEmail.to_address == customer.email))
    assert email.subject == "You have a free Quick Chat" and "$9.99 of account credit" in email.body_text
    [entry] = audit_rows("user.grant_free_session", customer.id)
    assert entry.before == {"credit_cents": 0} and entry.after["credit_cents"] == 999
    assert entry.reason == "Lost connection"
    # The ledger stays balanced: the platform gave what the customer got.
    ledger = db.session.execute(sa.text("SELECT account, amount_cents FROM ledger_entries ORDER BY id")).all()
    assert sorted(ledger) == [(f"credit:{customer.id}", 999), ("platform", -999)]

    customer_client = login(customer)
    assert "You have a free Quick Chat" in text(customer_client.get("/customer/"))
    response = customer_client.post("/customer/intake", data=INTAKE)  # Quick Chat, $9.99: no card needed
    assert response.status_code == 303
    session = db.session.scalar(sa.select(ConsultSession).where(ConsultSession.customer_id == customer.id))
    assert session is not None and money.escrow_balance(session.id) == 999
    assert money.credit_balance(customer.id) == 0


def test_service_actions_need_a_reason(app):
    admin = UserFactory("admin")
    customer = UserFactory("customer")
    db.session.commit()
    from autodoctor.services.errors import ValidationError

    for action in (admin_users.suspend, admin_users.ban, admin_users.reactivate):
        try:
            action(customer.id, Actor(admin.id), "  ")
        except ValidationError as exc:
            assert exc.field == "reason"
        else:
            raise AssertionError("a reason is required")


def test_two_admins_suspending_at_once_on_postgres_change_it_once(pg_app):
    from autodoctor.services.errors import Conflict
    from tests.services.test_concurrency_pg import race

    admins = [UserFactory("admin") for _ in range(2)]
    customer = UserFactory("customer")
    db.session.commit()
    ids, customer_id = [a.id for a in admins], customer.id
    results = race(pg_app, 2, lambda i: admin_users.suspend(customer_id, Actor(ids[i]), f"reason {i}").id)
    assert sorted(type(r).__name__ for r in results) == sorted(["int", Conflict.__name__])
    user = fresh(customer_id)
    assert (user.status, user.auth_version) == ("suspended", 1)
    assert len(audit_rows("user.suspend", customer_id)) == 1
