"""Admin maintenance: the cleanup preview lists exactly what applying it changes, a stale
preview changes nothing, the audit row keeps both; an extended request outlives its 2 hours;
and the e-mail outbox viewer (list, filters, pages, one e-mail, its attachment)."""
import re
from datetime import datetime, timedelta

import pytest

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import AuditEntry, ConsultSession, OutboxEmail
from autodoctor.services import maintenance, sweep
from tests.factories import AcceptedSessionFactory, PaidSessionFactory, UserFactory

NOW = datetime(2026, 3, 2, 15, 0)


@pytest.fixture
def admin(app, login):
    clock.set(NOW)
    user = UserFactory("admin", full_name="Ada Admin")
    db.session.commit()
    return login(user)


def made_at(when, factory, *args, **kwargs):
    clock.set(when)
    try:
        item = factory(*args, **kwargs)
        db.session.commit()
        return item
    finally:
        clock.set(NOW)


def request_of(session_id):
    db.session.expire_all()
    return db.session.get(ConsultSession, session_id).requests[-1]


@pytest.fixture
def overdue(app, admin):
    """One item for four of the cleanup groups, all overdue at NOW."""
    expired = made_at(NOW - timedelta(hours=3), PaidSessionFactory, UserFactory("customer"))
    unattended = made_at(NOW - timedelta(minutes=10), PaidSessionFactory, UserFactory("customer"))
    ended = made_at(NOW - timedelta(minutes=40), AcceptedSessionFactory, UserFactory("customer"),
                    UserFactory("mechanic"), live=True)
    no_show = made_at(NOW - timedelta(minutes=45), AcceptedSessionFactory, UserFactory("customer"),
                      UserFactory("mechanic"))
    return {"expire": expired.id, "unattended": unattended.id, "ended": ended.id, "no_show": no_show.id}


def token_of(page):
    return re.search(r'name="token" type="hidden" value="([0-9a-f]+)"|'
                     r'id="token" name="token" type="hidden" value="([0-9a-f]+)"', page).group(0).rsplit('"', 2)[-2]


def test_nothing_to_clean_up(app, admin):
    page = admin.get("/admin/maintenance").get_data(as_text=True)
    assert "Nothing to clean up" in page
    response = admin.post("/admin/maintenance", data={"token": maintenance.token(maintenance.preview()),
                                                      "confirm": "y"})
    assert response.status_code == 422
    assert "Nothing needs cleaning up right now." in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(AuditEntry.id))) == 0


def test_the_preview_lists_what_would_change_with_links_and_outcomes(app, admin, overdue):
    page = admin.get("/admin/maintenance").get_data(as_text=True)
    assert "<b>4</b> items would change now" in page
    assert f'href="/admin/sessions/{overdue["expire"]}"' in page
    assert "expired, $9.99 refunded" in page
    assert "to the Unattended queue" in page
    assert "completed, the mechanic paid" in page
    assert "freed, $9.99 refunded" in page
    for key in ("expire", "unattended", "ended", "no_show"):
        assert re.search(rf'id="group-{key}-heading">[^<]+<span class="badge unattended">1</span>', page), key
    assert re.search(r'id="group-orphaned-heading">[^<]+<span class="badge">0</span>', page)


def test_apply_changes_exactly_the_preview_and_audits_it(app, admin, overdue):
    previewed = {g.key: g.ids for g in maintenance.preview() if g.ids}
    expected = {"expire": [request_of(overdue["expire"]).id], "unattended": [request_of(overdue["unattended"]).id],
                "ended": [overdue["ended"]], "no_show": [request_of(overdue["no_show"]).id]}
    assert previewed == expected
    page = admin.get("/admin/maintenance").get_data(as_text=True)
    response = admin.post("/admin/maintenance", data={"token": token_of(page), "confirm": "y"},
                          follow_redirects=True)
    assert "Cleanup applied — 4 changed" in response.get_data(as_text=True)
    assert request_of(overdue["expire"]).status == "expired"
    assert db.session.get(ConsultSession, overdue["expire"]).status == "cancelled"
    assert request_of(overdue["unattended"]).status == "unattended"
    assert db.session.get(ConsultSession, overdue["ended"]).status == "completed"
    assert request_of(overdue["no_show"]).status == "cancelled"
    [entry] = db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == "maintenance.cleanup")).all()
    assert entry.before == expected
    assert {key: result["done"] for key, result in entry.after.items()} == expected
    assert entry.actor.full_name == "Ada Admin"
    assert maintenance.preview()[0].ids == [] and not any(g.ids for g in maintenance.preview())
    assert "Nothing to clean up" in response.get_data(as_text=True)


def test_a_stale_preview_shows_the_new_one_and_changes_nothing(app, admin, overdue):
    page = admin.get("/admin/maintenance").get_data(as_text=True)
    late = made_at(NOW - timedelta(minutes=7), PaidSessionFactory, UserFactory("customer"))  # overdue since
    response = admin.post("/admin/maintenance", data={"token": token_of(page), "confirm": "y"})
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "changed since your preview, so nothing was applied" in page
    assert "<b>5</b> items would change now" in page and f"Session #{late.id}" in page
    assert request_of(overdue["unattended"]).status == "pending"
    assert db.session.get(ConsultSession, overdue["ended"]).status == "live"
    assert db.session.scalar(db.select(db.func.count(AuditEntry.id))) == 0
    again = admin.post("/admin/maintenance", data={"token": token_of(page), "confirm": "y"})  # the new preview
    assert again.status_code == 303
    assert request_of(late.id).status == "unattended"


def test_holds_and_waitlist_places_are_previewed_and_applied(app, admin):
    from autodoctor.models import Appointment, Plan, WaitlistEntry
    from autodoctor.services import appointments, waitlist
    from tests.services.test_availability import mechanic

    video = db.session.scalar(db.select(Plan).where(Plan.code == "video15"))
    hold = appointments.hold_slot(UserFactory("customer").id, mechanic(), video, NOW + timedelta(days=7),
                                  now=NOW - timedelta(minutes=20))
    entry = waitlist.join(UserFactory("customer").id, now=NOW - timedelta(hours=25))
    db.session.commit()
    page = admin.get("/admin/maintenance").get_data(as_text=True)
    assert f"Appointment #{hold.id} · Standard Video" in page and f"Waitlist place #{entry.id}" in page
    assert "<b>2</b> items would change now" in page
    response = admin.post("/admin/maintenance", data={"token": token_of(page), "confirm": "y"},
                          follow_redirects=True)
    assert "Cleanup applied — 2 changed" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Appointment, hold.id).status == "expired"
    assert db.session.get(WaitlistEntry, entry.id).status == "expired"


@pytest.mark.parametrize("data,message", [
    ({}, "Tick the box to confirm you checked the preview."),
    ({"confirm": "y"}, "The preview is missing"),
])
def test_apply_needs_the_confirmation_and_the_preview(app, admin, overdue, data, message):
    if "confirm" not in data:
        data = {"token": maintenance.token(maintenance.preview())}
    response = admin.post("/admin/maintenance", data=data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert request_of(overdue["unattended"]).status == "pending"
    assert db.session.scalar(db.select(db.func.count(AuditEntry.id))) == 0


def test_an_extended_request_is_not_expired_before_its_new_deadline(app):
    t0 = NOW - timedelta(hours=3)
    session = made_at(t0, PaidSessionFactory, UserFactory("customer"))
    request = request_of(session.id)
    request.extended_until = t0 + timedelta(hours=4)
    db.session.commit()
    assert request.id not in dict((k, ids) for k, _, _, ids in sweep.overdue(t0 + timedelta(hours=3)))["expire"]
    sweep.run_sweep(t0 + timedelta(hours=3, minutes=59))
    assert request_of(session.id).status == "unattended"
    assert db.session.get(ConsultSession, session.id).status == "pending"
    sweep.run_sweep(t0 + timedelta(hours=4))
    assert request_of(session.id).status == "expired"
    assert db.session.get(ConsultSession, session.id).status == "cancelled"


def test_a_request_without_extension_still_expires_after_2_hours(app):
    t0 = NOW - timedelta(hours=3)
    session = made_at(t0, PaidSessionFactory, UserFactory("customer"))
    sweep.run_sweep(t0 + timedelta(hours=1, minutes=59))
    assert request_of(session.id).status == "unattended"
    sweep.run_sweep(t0 + timedelta(hours=2))
    assert request_of(session.id).status == "expired"


def test_maintenance_is_admin_only(app, login, overdue):
    for role in ("customer", "mechanic"):
        client = login(UserFactory(role))
        assert client.get("/admin/maintenance").status_code == 403
        assert client.post("/admin/maintenance", data={"token": maintenance.token(maintenance.preview()),
                                                       "confirm": "y"}).status_code == 403
    assert request_of(overdue["unattended"]).status == "pending"


# The outbox -------------------------------------------------------------------------------------


def email(to="a@example.com", subject="Receipt: Quick Chat", **kw):
    row = OutboxEmail(to_address=to, subject=subject, body_text=kw.pop("body", "Thanks <for> paying.\nLine 2"), **kw)
    db.session.add(row)
    db.session.flush()
    return row


def test_the_outbox_says_when_nothing_is_there_and_whether_smtp_is_set(app, admin):
    page = admin.get("/admin/outbox").get_data(as_text=True)
    assert "No e-mails yet" in page
    assert "e-mails are kept here, not sent" in page
    app.config["SMTP_HOST"] = "smtp.example.com"
    assert "SMTP is configured" in admin.get("/admin/outbox").get_data(as_text=True)


def test_the_outbox_lists_newest_first_with_filters(app, admin):
    sent = email("bob@example.com", "Your session summary", sent_at=NOW)
    failed = email("carol@example.com", "Reminder: tomorrow", error="Connection refused")
    waiting = email("dave@example.com", "Receipt: Standard Video")
    db.session.commit()
    page = admin.get("/admin/outbox").get_data(as_text=True)
    assert page.index(f'id="email-{waiting.id}"') < page.index(f'id="email-{failed.id}"') < \
        page.index(f'id="email-{sent.id}"')

    def ids(**query):
        html = admin.get("/admin/outbox", query_string=query).get_data(as_text=True)
        return [int(i) for i in re.findall(r'id="email-(\d+)"', html)]

    assert ids(state="sent") == [sent.id]
    assert ids(state="failed") == [failed.id]
    assert ids(state="waiting") == [waiting.id]
    assert ids(q="CAROL") == [failed.id]
    assert ids(q="receipt") == [waiting.id]
    assert ids(q="receipt", state="sent") == []
    assert "No e-mail matches these filters" in admin.get("/admin/outbox?q=nobody").get_data(as_text=True)
    assert ids(q="100%") == []


def test_the_outbox_pages_by_50_with_keyset_links(app, admin):
    rows = [email(f"user{n}@example.com", f"Mail {n}") for n in range(120)]
    db.session.commit()
    newest = [r.id for r in reversed(rows)]
    page = admin.get("/admin/outbox?state=waiting").get_data(as_text=True)
    assert [int(i) for i in re.findall(r'id="email-(\d+)"', page)] == newest[:50]
    older = re.search(r'rel="next" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert f"before={newest[49]}" in older and "state=waiting" in older
    fragment = admin.get(older, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.startswith('<div id="outbox-table">') and "admin-nav" not in fragment
    assert [int(i) for i in re.findall(r'id="email-(\d+)"', fragment)] == newest[50:100]
    newer = re.search(r'rel="prev" href="([^"]+)"', fragment).group(1).replace("&amp;", "&")
    back = admin.get(newer).get_data(as_text=True)
    assert [int(i) for i in re.findall(r'id="email-(\d+)"', back)] == newest[:50]
    last = admin.get(f"/admin/outbox?before={newest[99]}").get_data(as_text=True)
    assert [int(i) for i in re.findall(r'id="email-(\d+)"', last)] == newest[100:]
    assert 'rel="next"' not in last


def test_one_email_shows_its_headers_body_error_and_attachment(app, admin):
    row = email("erin@example.com", "Your appointment", error="SMTP 550 mailbox unavailable",
                attachment_name="appointment.ics", attachment_type="text/calendar",
                attachment_body=b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    plain = email("frank@example.com", "No attachment")
    db.session.commit()
    page = admin.get(f"/admin/outbox/{row.id}").get_data(as_text=True)
    assert "erin@example.com" in page and "Your appointment" in page
    assert '<pre class="email-body" id="email-body">Thanks &lt;for&gt; paying.\nLine 2</pre>' in page
    assert "SMTP 550 mailbox unavailable" in page and "failed" in page
    assert f'href="/admin/outbox/{row.id}/attachment"' in page
    download = admin.get(f"/admin/outbox/{row.id}/attachment")
    assert download.status_code == 200
    assert download.data == b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert "appointment.ics" in download.headers["Content-Disposition"]
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    none = admin.get(f"/admin/outbox/{plain.id}/attachment", follow_redirects=True)
    assert "This e-mail has no attachment of its own." in none.get_data(as_text=True)
    assert admin.get("/admin/outbox/99999").status_code == 404


def test_an_email_with_a_report_links_to_the_pdf(app, admin):
    from autodoctor.models import DiagnosticReport

    mechanic = UserFactory("mechanic")
    session = AcceptedSessionFactory(UserFactory("customer"), mechanic, plan_code="diagnostic")
    report = DiagnosticReport(session_id=session.id, author_id=mechanic.id, findings="Worn pads", verdict="caution")
    db.session.add(report)
    db.session.flush()
    row = email(subject="Your diagnostic report", report_id=report.id)
    db.session.commit()
    page = admin.get(f"/admin/outbox/{row.id}").get_data(as_text=True)
    assert f'href="/room/{session.id}/report.pdf"' in page


def test_the_outbox_is_admin_only(app, login):
    row = email()
    db.session.commit()
    client = login(UserFactory("customer"))
    for path in ("/admin/outbox", f"/admin/outbox/{row.id}", f"/admin/outbox/{row.id}/attachment"):
        assert client.get(path).status_code == 403
