"""The admin tables: filters, sort, keyset pages, the HTMX fragment and the streamed CSV."""
import csv
import html
import io
import re
from datetime import datetime, timedelta

import pytest

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import ConsultSession, Intake, Plan
from autodoctor.services import admin_tables, audit
from tests.factories import AcceptedSessionFactory, PaidSessionFactory, UserFactory

NAMES = ("requests", "sessions", "intakes", "customers", "mechanics", "payments", "audit")
MARCH = datetime(2026, 3, 2, 10, 0)


def add_sessions(customer, count, created_at, plan_code="chat10", status="completed", mechanic=None, **fields):
    """`count` sessions of `customer` created at `created_at` (written directly: many rows, fast)."""
    plan = db.session.scalar(db.select(Plan).where(Plan.code == plan_code))
    intakes = [Intake(customer_id=customer.id, plan_id=plan.id, concern="Grinding noise when braking",
                      city="Toronto", country="CA", created_at=created_at) for _ in range(count)]
    db.session.add_all(intakes)
    db.session.flush()
    sessions = [ConsultSession(customer_id=customer.id, mechanic_id=mechanic.id if mechanic else None,
                               plan_id=plan.id, intake_id=intake.id, status=status, minutes=plan.minutes,
                               created_at=created_at, **fields) for intake in intakes]
    db.session.add_all(sessions)
    db.session.commit()
    return [s.id for s in sessions]


def row_ids(page, name="sessions"):
    return [int(i) for i in re.findall(rf'<tr id="{name}-(\d+)"', page)]


def next_link(page):
    found = re.search(r'rel="next" href="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def walk(client, url, name="sessions"):
    """Every row id, following "Next page" to the end (HTMX fragments, as the browser does)."""
    seen, pages = [], 0
    while url:
        page = client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
        seen += row_ids(page, name)
        url, pages = next_link(page), pages + 1
    return seen, pages


@pytest.fixture
def admin_client(app, login):
    return login(UserFactory("admin", full_name="Ada Admin"))


@pytest.mark.parametrize("name", NAMES)
def test_each_table_is_a_page_and_an_htmx_fragment(app, admin_client, name):
    customer = UserFactory("customer", full_name="Cora Customer")
    session = AcceptedSessionFactory(customer, UserFactory("mechanic", full_name="Max Mechanic"))
    audit.record(audit.Actor(None), "session.refund", "session", session.id, "Refunded session", None, None)
    db.session.commit()

    page = admin_client.get(f"/admin/{name}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<html" in body and f'<form id="filters-{name}"' in body and f'<div id="table-{name}"' in body
    assert f'href="/admin/{name}.csv"' in body
    assert row_ids(body, name), "the table shows its rows"

    fragment = admin_client.get(f"/admin/{name}", headers={"HX-Request": "true"})
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200
    assert text.lstrip().startswith(f'<div id="table-{name}"')
    assert "<html" not in text and "<form" not in text
    assert row_ids(text, name) == row_ids(body, name)
    assert "HX-Request" in fragment.headers["Vary"]

    boosted = admin_client.get(f"/admin/{name}", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in boosted.get_data(as_text=True)


@pytest.mark.parametrize("role", ["customer", "mechanic"])
@pytest.mark.parametrize("name", NAMES)
def test_tables_and_exports_are_for_admins_only(app, login, client, role, name):
    someone = login(UserFactory(role))
    assert someone.get(f"/admin/{name}").status_code == 403
    assert someone.get(f"/admin/{name}.csv").status_code == 403
    anonymous = client.get(f"/admin/{name}.csv")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_status_plan_and_search_filters_narrow_the_sessions(app, admin_client):
    alice = UserFactory("customer", "alice@example.com", full_name="Alice Wong")
    bob = UserFactory("customer", "bob@example.com", full_name="Bob Stone")
    mechanic = UserFactory("mechanic", "raj@example.com", full_name="Raj Spanner")
    alice_chat = add_sessions(alice, 2, MARCH, "chat10", mechanic=mechanic)
    alice_video = add_sessions(alice, 1, MARCH, "video15", status="cancelled")
    bob_chat = add_sessions(bob, 2, MARCH, "chat10", status="cancelled")

    def ids(query):
        return sorted(row_ids(admin_client.get(f"/admin/sessions?{query}").get_data(as_text=True)))

    assert ids("") == sorted(alice_chat + alice_video + bob_chat)
    assert ids("status=cancelled") == sorted(alice_video + bob_chat)
    assert ids("plan=video15") == alice_video
    assert ids("status=cancelled&plan=chat10") == sorted(bob_chat)
    assert ids("q=ALICE") == sorted(alice_chat + alice_video)
    assert ids("q=bob%40example") == sorted(bob_chat)
    assert ids("q=spanner") == sorted(alice_chat)  # the mechanic's name
    assert ids(f"q=%23{bob_chat[0]}") == [bob_chat[0]]
    assert ids("q=100%25") == []  # % is a character to find, not a wildcard

    page = admin_client.get("/admin/sessions?status=live").get_data(as_text=True)
    assert "No sessions match these filters." in page
    assert '<a href="/admin/sessions">Clear filters</a>' in page


def test_the_filter_form_keeps_its_state_in_the_url(app, admin_client):
    add_sessions(UserFactory("customer"), 1, MARCH)
    page = admin_client.get("/admin/sessions?status=completed&plan=chat10&q=x&from=2026-03-01&sort=id")
    body = page.get_data(as_text=True)
    assert '<option value="completed" selected>' in body
    assert '<option value="chat10" selected>' in body
    assert 'name="q" value="x"' in body and 'name="from" value="2026-03-01"' in body
    assert '<input type="hidden" name="sort" value="id" form="filters-sessions">' in body
    assert 'href="/admin/sessions.csv?status=completed&amp;plan=chat10&amp;q=x&amp;from=2026-03-01&amp;sort=id"' in body
    assert 'hx-push-url="true"' in body and "keyup changed delay:400ms" in body


def test_date_range_is_inclusive_whole_days_in_utc(app, admin_client):
    customer = UserFactory("customer")
    before = add_sessions(customer, 1, datetime(2026, 2, 28, 23, 59, 59))
    first = add_sessions(customer, 1, datetime(2026, 3, 1, 0, 0))
    last = add_sessions(customer, 1, datetime(2026, 3, 3, 23, 59, 59))
    after = add_sessions(customer, 1, datetime(2026, 3, 4, 0, 0))
    page = admin_client.get("/admin/sessions?from=2026-03-01&to=2026-03-03").get_data(as_text=True)
    assert sorted(row_ids(page)) == first + last
    page = admin_client.get("/admin/sessions?to=2026-02-28").get_data(as_text=True)
    assert row_ids(page) == before
    page = admin_client.get("/admin/sessions?from=2026-03-04").get_data(as_text=True)
    assert row_ids(page) == after


def test_sorting_both_ways(app, admin_client):
    customer = UserFactory("customer")
    old = add_sessions(customer, 1, MARCH)
    new = add_sessions(customer, 1, MARCH + timedelta(days=1))
    middle = add_sessions(customer, 1, MARCH + timedelta(hours=1))
    assert row_ids(admin_client.get("/admin/sessions").get_data(as_text=True)) == new + middle + old
    page = admin_client.get("/admin/sessions?sort=created").get_data(as_text=True)
    assert row_ids(page) == old + middle + new
    assert 'aria-sort="ascending"' in page and "Created, oldest first" in page
    assert row_ids(admin_client.get("/admin/sessions?sort=id").get_data(as_text=True)) == sorted(old + new + middle)
    assert row_ids(admin_client.get("/admin/sessions?sort=-id").get_data(as_text=True)) == \
        sorted(old + new + middle, reverse=True)
    # An unknown or unsortable column is the default order, without a fuss.
    for sort in ("nonsense", "-customer", "rating"):
        page = admin_client.get(f"/admin/sessions?sort={sort}").get_data(as_text=True)
        assert row_ids(page) == new + middle + old and 'role="alert"' not in page


@pytest.mark.parametrize("sort", ["-created", "created"])
def test_keyset_pages_never_repeat_or_skip_a_row_even_with_equal_dates(app, admin_client, sort):
    customer = UserFactory("customer")
    ids = []
    for hours in (0, 1, 2):  # 130 sessions on three timestamps: long runs of ties across pages
        ids += [(hours, i) for i in add_sessions(customer, 40 + hours * 5, MARCH + timedelta(hours=hours))]
    expected = [i for _, i in sorted(ids, reverse=sort.startswith("-"))]
    seen, pages = walk(admin_client, f"/admin/sessions?sort={sort}")
    assert pages == 3
    assert seen == expected
    last = admin_client.get(f"/admin/sessions?sort={sort}").get_data(as_text=True)
    second = admin_client.get(next_link(last)).get_data(as_text=True)
    assert "← Back to first page" in second and "on a later page" in second


def test_keyset_on_a_column_with_empty_values_keeps_them_last_both_ways(app, admin_client, monkeypatch):
    monkeypatch.setattr(admin_tables, "PAGE_SIZE", 4)
    ratings = [None, 5, 3, None, 4, 4, 5, None, 3, 4, None, 5, 4]
    mechanics = []
    for rating in ratings:
        mechanic = UserFactory("mechanic")
        if rating:
            mechanic.mechanic_profile.rating_sum, mechanic.mechanic_profile.rating_count = rating * 2, 2
        mechanics.append((rating, mechanic.id))
    db.session.commit()
    rated = [m for m in mechanics if m[0]]
    unrated = sorted(i for r, i in mechanics if r is None)
    best_first = [i for _, i in sorted(rated, reverse=True)] + sorted(unrated, reverse=True)
    worst_first = [i for _, i in sorted(rated)] + unrated
    assert walk(admin_client, "/admin/mechanics?sort=-rating", "mechanics")[0] == best_first
    assert walk(admin_client, "/admin/mechanics?sort=rating", "mechanics")[0] == worst_first


def test_invalid_filter_values_are_explained_not_errors(app, admin_client):
    kept = add_sessions(UserFactory("customer"), 2, MARCH)
    cases = {
        "status=bogus": "“bogus” is not a status here.",
        "plan=platinum": "“platinum” is not a plan here.",
        "from=2026-02-30": "“2026-02-30” is not a date for “From”: use YYYY-MM-DD",
        "to=yesterday": "“yesterday” is not a date for “To”",
        "from=2026-03-05&to=2026-03-01": "The “From” date (2026-03-05) is after the “To” date (2026-03-01).",
        "after=not-a-cursor": "That page link no longer matches this view; showing the first page.",
        "from=9999-12-31": "“9999-12-31” is not a date for “From”",
        f"after={admin_tables.encode_cursor('created', '2026-03-02T10:00:00', 10**30)}": "no longer matches this view",
        f"after={admin_tables.encode_cursor('created', 'soon', 3)}": "no longer matches this view",
    }
    for query, message in cases.items():
        response = admin_client.get(f"/admin/sessions?{query}")
        body = response.get_data(as_text=True)
        assert response.status_code == 200, query
        assert message in html.unescape(body), query
        assert sorted(row_ids(body)) == sorted(kept), query  # the bad value is left out, not applied
    fragment = admin_client.get("/admin/sessions?status=bogus", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "is not a status here." in html.unescape(fragment)
    # A cursor made for another sort is not applied to this one.
    page = admin_client.get("/admin/sessions?sort=id").get_data(as_text=True)
    token = admin_tables.encode_cursor("id", kept[0], kept[0])
    body = admin_client.get(f"/admin/sessions?after={token}").get_data(as_text=True)
    assert "no longer matches this view" in body and row_ids(body) == row_ids(page)[::-1]
    exported = admin_client.get("/admin/sessions.csv?status=bogus")
    assert exported.status_code == 400
    assert "is not a status here." in html.unescape(exported.get_data(as_text=True))


def read_csv(response):
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_csv_streams_the_whole_filtered_set_in_batches(app, admin_client, monkeypatch):
    monkeypatch.setattr(admin_tables, "CSV_BATCH", 7)
    chunks = []
    real = admin_tables.csv_chunks

    def counting(state):
        for chunk in real(state):
            chunks.append(chunk)
            yield chunk

    monkeypatch.setattr(admin_tables, "csv_chunks", counting)
    customer = UserFactory("customer", full_name="Cora Customer")
    completed = add_sessions(customer, 23, MARCH)
    add_sessions(customer, 5, MARCH, status="cancelled")
    clock.set(datetime(2026, 4, 9, 12, 0))

    response = admin_client.get("/admin/sessions.csv?status=completed&sort=id&after=ignored")
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="autodoctor-sessions-2026-04-09.csv"'
    rows = read_csv(response)
    header, data = rows[0], rows[1:]
    assert header[:4] == ["#", "Created", "Plan", "Customer"]
    assert [int(r[0]) for r in data] == sorted(completed)  # every filtered row, in the view's order
    assert data[0][1] == "2026-03-02 10:00:00" and data[0][3] == "Cora Customer"
    assert len(chunks) == 1 + 4  # the header, then batches of 7 rows: 7 + 7 + 7 + 2


def test_csv_values_a_spreadsheet_reads_safely(app, admin_client):
    customer = UserFactory("customer", full_name="=HYPERLINK(\"http://x\")")
    PaidSessionFactory(customer)
    db.session.commit()
    rows = read_csv(admin_client.get("/admin/payments.csv"))
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["Customer"] == "'=HYPERLINK(\"http://x\")"
    assert record["Amount (USD)"] == "9.99" and record["Credit (USD)"] == "0.00"
    assert record["Status"] == "paid"


def test_rows_link_to_their_pages(app, admin_client):
    customer = UserFactory("customer", full_name="Cora Customer")
    session = AcceptedSessionFactory(customer, UserFactory("mechanic", full_name="Max Mechanic"))
    abandoned = add_sessions(UserFactory("customer"), 1, MARCH)  # noqa: F841 - another customer's rows
    sessions = admin_client.get("/admin/sessions").get_data(as_text=True)
    assert f'<a href="/admin/sessions/{session.id}">#{session.id}</a>' in sessions
    assert f'<a href="/admin/users/{customer.id}">Cora Customer</a>' in sessions
    payments = admin_client.get(f"/admin/payments?q={customer.email}").get_data(as_text=True)
    assert f'<a href="/admin/sessions/{session.id}">' in payments
    customers = admin_client.get("/admin/customers?q=cora").get_data(as_text=True)
    assert row_ids(customers, "customers") == [customer.id]
    assert f'<a href="/admin/users/{customer.id}">' in customers
    requests = admin_client.get("/admin/requests").get_data(as_text=True)
    assert f'<a href="/admin/sessions/{session.id}">' in requests


def test_customers_show_their_session_count_and_status_filter(app, admin_client):
    busy = UserFactory("customer", full_name="Busy Bee")
    idle = UserFactory("customer", full_name="Idle Ike")
    idle.status = "suspended"
    add_sessions(busy, 3, MARCH)
    csv_rows = read_csv(admin_client.get("/admin/customers.csv"))
    counts = {r[1]: r[6] for r in csv_rows[1:]}
    assert counts == {"Busy Bee": "3", "Idle Ike": "0"}
    page = admin_client.get("/admin/customers?status=suspended").get_data(as_text=True)
    assert row_ids(page, "customers") == [idle.id]


def test_mechanics_filter_by_application(app, admin_client):
    approved = UserFactory("mechanic")
    pending = UserFactory("mechanic", approved=False)
    rejected = UserFactory("mechanic", approved=False, rejection_reason="Certificate expired")
    db.session.commit()
    for status, mechanic in (("approved", approved), ("pending", pending), ("rejected", rejected)):
        page = admin_client.get(f"/admin/mechanics?application={status}").get_data(as_text=True)
        assert row_ids(page, "mechanics") == [mechanic.id], status


def test_audit_log_filters_and_shows_before_and_after(app, admin_client):
    other_admin = UserFactory("admin", full_name="Otto Other")
    customer = UserFactory("customer")
    session_id = add_sessions(customer, 1, MARCH)[0]
    me = db.session.scalar(db.select(type(customer)).where(type(customer).full_name == "Ada Admin"))
    refund = audit.record(audit.Actor(me.id), "session.refund", "session", session_id, "Refunded $9.99",
                          {"status": "completed"}, {"status": "refunded"}, reason="Mechanic no-show")
    suspend = audit.record(audit.Actor(other_admin.id), "user.suspend", "user", customer.id, "Suspended",
                           {"status": "active"}, {"status": "suspended"})
    system = audit.record(None, "session.cancel", "session", session_id, "Swept")
    db.session.commit()

    def ids(query):
        return row_ids(admin_client.get(f"/admin/audit?{query}").get_data(as_text=True), "audit")

    assert ids("") == [system.id, suspend.id, refund.id]
    assert ids("action=user.suspend") == [suspend.id]
    assert ids(f"actor={other_admin.id}") == [suspend.id]
    assert ids("actor=system") == [system.id]
    assert ids("target=session") == [system.id, refund.id]
    assert ids("q=no-show") == [refund.id]
    page = admin_client.get("/admin/audit?action=session.refund").get_data(as_text=True)
    assert f'<a href="/admin/sessions/{session_id}">session #{session_id}</a>' in page
    assert "&#34;refunded&#34;" in page or '"refunded"' in html.unescape(page)
    assert "Mechanic no-show" in page
    form = admin_client.get("/admin/audit").get_data(as_text=True)
    assert '<option value="user.suspend">user.suspend</option>' in form
    assert f'<option value="{other_admin.id}">Otto Other</option>' in form
    rows = read_csv(admin_client.get("/admin/audit.csv?action=session.refund"))
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["Before"] == '{"status": "completed"}' and record["After"] == '{"status": "refunded"}'
    assert record["Reason"] == "Mechanic no-show" and record["Actor"] == "Ada Admin"


def test_empty_tables_say_so(app, admin_client):
    page = admin_client.get("/admin/intakes").get_data(as_text=True)
    assert "No intakes yet." in page
    page = admin_client.get("/admin/intakes?q=nobody").get_data(as_text=True)
    assert "No intakes match these filters." in page


def test_postgres_pages_search_and_csv(pg_app, login, monkeypatch):
    monkeypatch.setattr(admin_tables, "CSV_BATCH", 25)
    client = login(UserFactory("admin"))
    wanda = UserFactory("customer", "wanda@example.com", full_name="Wanda Wrench")
    other = UserFactory("customer")
    ids = []
    for hours in (0, 1):
        ids += [(hours, i) for i in add_sessions(wanda, 40, MARCH + timedelta(hours=hours))]
    add_sessions(other, 30, MARCH, status="cancelled")
    expected = [i for _, i in sorted(ids, reverse=True)]

    seen, pages = walk(client, "/admin/sessions?q=wanda")
    assert (seen, pages) == (expected, 2)
    monkeypatch.setattr(admin_tables, "PEOPLE_LIST", 0)  # the per-row check, as when many people match
    assert walk(client, "/admin/sessions?q=WANDA")[0] == expected
    monkeypatch.setattr(admin_tables, "PEOPLE_LIST", 500)
    seen, _ = walk(client, "/admin/sessions?status=completed&sort=created")
    assert seen == expected[::-1]
    seen, _ = walk(client, "/admin/sessions?status=cancelled&from=2026-03-02&to=2026-03-02")
    assert len(seen) == 30

    response = client.get("/admin/sessions.csv?q=WRENCH")
    assert response.is_streamed
    rows = read_csv(response)
    assert [int(r[0]) for r in rows[1:]] == expected
    for name in NAMES:
        assert client.get(f"/admin/{name}", headers={"HX-Request": "true"}).status_code == 200
        assert client.get(f"/admin/{name}.csv").status_code == 200


def test_search_matching_many_people_checks_each_row_instead(app, admin_client, monkeypatch):
    monkeypatch.setattr(admin_tables, "PEOPLE_LIST", 1)  # more matches than the short list holds
    ann = UserFactory("customer", "ann@example.com", full_name="Ann Lee")
    anna = UserFactory("customer", "anna@example.com", full_name="Anna Park")
    bob = UserFactory("customer", "bob@example.com", full_name="Bob Stone")
    ids = add_sessions(ann, 1, MARCH) + add_sessions(anna, 1, MARCH)
    add_sessions(bob, 1, MARCH)
    page = admin_client.get("/admin/sessions?q=ann").get_data(as_text=True)
    assert sorted(row_ids(page)) == sorted(ids)
    rows = read_csv(admin_client.get("/admin/payments.csv?q=ann"))
    assert len(rows) == 1  # these sessions were written without payments: the header only
