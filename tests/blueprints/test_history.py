"""Session history: the customer's and the mechanic's lists (columns, order, pagination,
empty states, who may see them, a constant number of SQL statements however long the
history), the summary page's header and its way back, and the list on a 360 px phone."""
import re
import secrets
from contextlib import contextmanager
from datetime import datetime

import pytest
import tinyhtml5
from sqlalchemy import event

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import DiagnosticReport, StoredFile, User
from autodoctor.services import chat, lifecycle
from tests.factories import PaidSessionFactory, UserFactory

T0 = datetime(2026, 11, 24, 9, 0)
NS = "{http://www.w3.org/1999/xhtml}"


# --- building history through the real lifecycle --------------------------------------------


def attach_file(owner, session=None, intake_id=None):
    """A file record as the room's upload (`session`) or the intake form (`intake_id`) leaves
    it. The list only counts rows; storing and serving the bytes is tested with the files."""
    record = StoredFile(owner_id=owner.id, session_id=session.id if session else None, intake_id=intake_id,
                        storage_key=secrets.token_urlsafe(24), original_name="photo.png", mime_type="image/png",
                        kind="image", size_bytes=1024)
    db.session.add(record)
    db.session.commit()
    return record


def completed_session(customer, mechanic, plan_code="chat10", minutes=12, lines=(), files=0,
                      notes="Front pads are worn; replace them this week.", rating=None):
    """Paid, accepted, both in the room, a conversation, ended by the mechanic after `minutes`
    (with `notes=None`: ended by the plan's clock, so nobody has written notes)."""
    session = PaidSessionFactory(customer, plan_code)
    db.session.commit()
    lifecycle.accept_request(session.current_request.id, mechanic.id)
    db.session.commit()
    lifecycle.join_room(session.id, customer.id)
    lifecycle.join_room(session.id, mechanic.id)
    db.session.commit()
    assert lifecycle.maybe_go_live(session.id)
    db.session.commit()
    for sender, body in lines:
        chat.post_message(session.id, sender.id, body)
    db.session.commit()
    for _ in range(files):
        attach_file(customer, session)
    if notes is None:
        clock.advance(minutes=session.minutes)
        assert lifecycle.end_at_time_limit(session.id)
    else:
        clock.advance(minutes=minutes)
        lifecycle.end_session(session.id, mechanic.id, notes)
    lifecycle.leave_room(session.id, customer.id)
    lifecycle.leave_room(session.id, mechanic.id)
    db.session.commit()
    if rating:
        lifecycle.rate_session(session.id, customer.id, rating, "")
        db.session.commit()
    clock.advance(minutes=30)
    return session


def cancelled_session(customer):
    """Paid, then the customer gave up waiting (full refund)."""
    session = PaidSessionFactory(customer)
    db.session.commit()
    lifecycle.cancel_by_customer(session.id, customer.id)
    db.session.commit()
    clock.advance(minutes=10)
    return session


def waiting_session(customer, mechanic, plan_code="video15"):
    session = PaidSessionFactory(customer, plan_code)
    db.session.commit()
    lifecycle.accept_request(session.current_request.id, mechanic.id)
    db.session.commit()
    clock.advance(minutes=1)
    return session


def add_report(session, mechanic):
    db.session.add(DiagnosticReport(session_id=session.id, author_id=mechanic.id, findings="Misfire on cylinder 1.",
                                    verdict="caution", trouble_codes=[{"code": "P0301", "description": "misfire"}],
                                    repairs=[]))
    db.session.commit()


# --- reading the page the way a person reads it ------------------------------------------------


def _text(element):
    return " ".join("".join(element.itertext()).split())


def history_rows(html):
    """[{"id": session id, label: cell text, ..., "links": [hrefs], "action": (text, href)}] in page order."""
    rows = []
    for tr in tinyhtml5.parse(html).iter(NS + "tr"):
        if not (tr.get("id") or "").startswith("history-session-"):
            continue
        row = {"id": int(tr.get("id").rsplit("-", 1)[1]), "links": [a.get("href") for a in tr.iter(NS + "a")]}
        for td in tr.iter(NS + "td"):
            if td.get("data-label"):
                row[td.get("data-label")] = _text(td)
            elif "actions" in (td.get("class") or ""):
                link = next(td.iter(NS + "a"))
                row["action"] = (_text(link), link.get("href"))
        rows.append(row)
    return rows


def find(html, element_id):
    return next((e for e in tinyhtml5.parse(html).iter() if e.get("id") == element_id), None)


@pytest.fixture
def cast(app):
    clock.set(T0)
    people = {
        "carla": UserFactory("customer", "carla@example.com", "Carla Driver"),
        "dev": UserFactory("customer", "dev@example.com", "Dev Other"),
        "mia": UserFactory("mechanic", "mia@example.com", "Mia Wrench"),
        "raj": UserFactory("mechanic", "raj@example.com", "Raj Spanner"),
        "ada": UserFactory("admin", "ada@example.com", "Ada Admin"),
    }
    db.session.commit()
    return people


@contextmanager
def counted_statements():
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


# --- the customer's list ------------------------------------------------------------------------


def test_customer_sees_only_their_own_sessions_newest_first_with_every_column(cast, login):
    carla, dev, mia, raj = cast["carla"], cast["dev"], cast["mia"], cast["raj"]
    diagnostic = completed_session(carla, mia, "diagnostic", minutes=47, files=2, rating=4,
                                   lines=[(carla, "It misfires when cold."), (mia, "Any codes?"), (carla, "P0301")])
    add_report(diagnostic, mia)
    cancelled = cancelled_session(carla)
    someone_elses = completed_session(dev, raj, lines=[(dev, "Hello")])
    pending = PaidSessionFactory(carla, "quick_advice")
    db.session.commit()

    response = login(carla).get("/customer/sessions")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    rows = history_rows(html)
    assert [r["id"] for r in rows] == [pending.id, cancelled.id, diagnostic.id]
    assert someone_elses.id not in [r["id"] for r in rows]
    assert "Showing 1–3 of 3 sessions" in _text(find(html, "history-count"))

    newest, gave_up, done = rows
    assert newest["Plan"] == "Quick Advice" and newest["Mechanic"] == "Not assigned yet"
    assert newest["Duration"] == "Not started" and newest["Status"] == "Finding a mechanic"
    assert newest["action"] == ("View status", f"/customer/sessions/{pending.id}")

    assert gave_up["Status"] == "Cancelled" and gave_up["Duration"] == "Not started"
    assert gave_up["action"] == ("View summary", f"/room/{cancelled.id}/summary")

    assert done["Plan"] == "Full Diagnostic" and done["Mechanic"] == "Mia Wrench"
    assert done["Date"] == "Nov 24, 2026 09:00 UTC"
    assert done["Duration"] == "47 min"
    assert done["Status"].startswith("Completed") and "★★★★☆" in done["Status"]
    assert 'aria-label="Rated 4 out of 5"' in html
    assert done["Details"].split() == ["Notes", "Report", "2", "files", "3", "messages"]
    assert done["action"] == ("View summary", f"/room/{diagnostic.id}/summary")
    assert f"/room/{diagnostic.id}/summary#report-summary" in done["links"]  # the Report indicator opens the report


def test_intake_photos_count_as_the_sessions_files_and_nothing_shows_when_there_is_nothing(cast, login):
    carla, mia = cast["carla"], cast["mia"]
    bare = completed_session(carla, mia, notes=None)
    with_intake_photo = PaidSessionFactory(carla)
    attach_file(carla, intake_id=with_intake_photo.intake_id)

    rows = {r["id"]: r for r in history_rows(login(carla).get("/customer/sessions").get_data(as_text=True))}

    assert rows[with_intake_photo.id]["Details"] == "1 file 0 messages"
    assert rows[bare.id]["Details"] == "0 files 0 messages"  # ended by the clock: no notes yet
    assert rows[bare.id]["Duration"] == "30 min"


def test_a_live_or_waiting_session_links_to_the_room(cast, login):
    carla, mia = cast["carla"], cast["mia"]
    session = waiting_session(carla, mia)

    [row] = history_rows(login(carla).get("/customer/sessions").get_data(as_text=True))

    assert row["Status"] == "Waiting to start" and row["Mechanic"] == "Mia Wrench"
    assert row["action"] == ("Open the room", f"/room/{session.id}")
    lifecycle.join_room(session.id, carla.id)
    lifecycle.join_room(session.id, mia.id)
    db.session.commit()
    lifecycle.maybe_go_live(session.id)
    db.session.commit()
    [row] = history_rows(login(carla).get("/customer/sessions").get_data(as_text=True))
    assert row["Status"] == "Live now" and row["Duration"] == "In progress"
    assert row["action"] == ("Open the room", f"/room/{session.id}")


# --- the mechanic's list ------------------------------------------------------------------------


def test_mechanic_sees_the_sessions_they_took_with_the_customer(cast, login):
    carla, dev, mia, raj = cast["carla"], cast["dev"], cast["mia"], cast["raj"]
    first = completed_session(carla, mia, minutes=9, lines=[(carla, "Squeal on braking")], rating=5)
    not_hers = completed_session(dev, raj)
    cancelled_session(carla)  # never reached a mechanic
    current = waiting_session(dev, mia)

    html = login(mia).get("/mechanic/sessions").get_data(as_text=True)

    rows = history_rows(html)
    assert [r["id"] for r in rows] == [current.id, first.id]
    assert not_hers.id not in [r["id"] for r in rows]
    assert rows[0]["Customer"] == "Dev Other" and rows[0]["action"] == ("Open the room", f"/room/{current.id}")
    assert rows[1]["Customer"] == "Carla Driver" and rows[1]["Duration"] == "9 min"
    assert rows[1]["Details"] == "Notes 0 files 1 message" and "★★★★★" in rows[1]["Status"]
    assert rows[1]["action"] == ("View summary", f"/room/{first.id}/summary")
    assert "<th scope=\"col\">Customer</th>" in html


# --- pagination ---------------------------------------------------------------------------------


def test_history_pages_by_twenty_with_newer_and_older_links(cast, login):
    carla = cast["carla"]
    sessions = [cancelled_session(carla) for _ in range(23)]
    client = login(carla)

    first = client.get("/customer/sessions").get_data(as_text=True)
    assert [r["id"] for r in history_rows(first)] == [s.id for s in reversed(sessions)][:20]
    assert "Showing 1–20 of 23 sessions" in first and "Page 1 of 2" in first
    older = find(first, "session-history").find(f".//{NS}a[@rel='next']")
    assert older.get("href") == "/customer/sessions?page=2" and _text(older) == "Older →"
    assert older.get("hx-push-url") == "true" and older.get("hx-target") == "#session-history"
    assert find(first, "session-history").find(f".//{NS}a[@rel='prev']") is None

    second = client.get("/customer/sessions?page=2").get_data(as_text=True)
    assert [r["id"] for r in history_rows(second)] == [s.id for s in reversed(sessions)][20:]
    assert "Showing 21–23 of 23 sessions" in second
    assert find(second, "session-history").find(f".//{NS}a[@rel='prev']").get("href") == "/customer/sessions?page=1"
    assert find(second, "session-history").find(f".//{NS}a[@rel='next']") is None

    # A page past the end shows the last page; nonsense shows the first.
    assert history_rows(client.get("/customer/sessions?page=99").get_data(as_text=True)) == history_rows(second)
    for nonsense in ("0", "-3", "abc"):
        assert history_rows(client.get(f"/customer/sessions?page={nonsense}").get_data(as_text=True)) \
            == history_rows(first)


def test_page_links_swap_only_the_list_and_a_history_restore_gets_the_whole_page(cast, login):
    carla = cast["carla"]
    for _ in range(21):
        cancelled_session(carla)
    client = login(carla)

    swapped = client.get("/customer/sessions?page=2", headers={"HX-Request": "true"})
    body = swapped.get_data(as_text=True)
    assert swapped.status_code == 200 and "HX-Request" in swapped.headers["Vary"]
    assert body.lstrip().startswith('<section id="session-history"') and "<html" not in body
    assert len(history_rows(body)) == 1

    restored = client.get("/customer/sessions?page=2", headers={"HX-Request": "true",
                                                                "HX-History-Restore-Request": "true"})
    assert "<html" in restored.get_data(as_text=True)


def test_one_page_does_not_show_page_links(cast, login):
    completed_session(cast["carla"], cast["mia"])
    html = login(cast["carla"]).get("/customer/sessions").get_data(as_text=True)
    assert "Page 1 of" not in html and 'rel="next"' not in html


# --- empty states -------------------------------------------------------------------------------


def test_a_customer_with_no_sessions_is_invited_to_get_help(cast, login):
    html = login(cast["carla"]).get("/customer/sessions").get_data(as_text=True)
    empty = find(html, "history-empty")
    assert empty is not None and "No sessions yet" in _text(empty)
    cta = empty.find(f".//{NS}a")
    assert _text(cta) == "Get help" and cta.get("href") == "/customer/book"
    assert history_rows(html) == []


def test_a_mechanic_with_no_sessions_is_sent_back_to_the_dashboard(cast, login):
    completed_session(cast["carla"], cast["raj"])  # Raj's, not Mia's
    html = login(cast["mia"]).get("/mechanic/sessions").get_data(as_text=True)
    cta = find(html, "history-empty").find(f".//{NS}a")
    assert _text(cta) == "Back to the dashboard" and cta.get("href") == "/mechanic/"


# --- who may see it -----------------------------------------------------------------------------


@pytest.mark.parametrize("path,allowed", [("/customer/sessions", ("carla", "dev")),
                                          ("/mechanic/sessions", ("mia", "raj"))])
def test_each_list_is_only_for_its_role(cast, login, client, path, allowed):
    for name, user in cast.items():
        status = login(user).get(path).status_code
        assert status == (200 if name in allowed else 403), (name, path, status)
    anonymous = client.get(path)
    assert anonymous.status_code in (302, 303) and "/login" in anonymous.headers["Location"]


def test_the_navigation_links_to_each_roles_history(cast, login):
    customer_page = login(cast["carla"]).get("/customer/").get_data(as_text=True)
    mechanic_page = login(cast["mia"]).get("/mechanic/").get_data(as_text=True)
    admin_page = login(cast["ada"]).get("/admin/").get_data(as_text=True)
    assert '<a href="/customer/sessions">History</a>' in customer_page
    assert '<a href="/mechanic/sessions">History</a>' in mechanic_page
    assert "/sessions\">History</a>" not in admin_page


# --- no query per row ---------------------------------------------------------------------------


@pytest.mark.parametrize("viewer", ["carla", "mia"])
def test_the_number_of_sql_statements_does_not_grow_with_the_history(cast, login, viewer):
    carla_id, mia_id = cast["carla"].id, cast["mia"].id
    client = login(cast[viewer])
    path = "/customer/sessions" if viewer == "carla" else "/mechanic/sessions"

    def statements_for_one_page():
        # The tests share the request's database session: start it empty, as a real request
        # does, so nothing the test created answers a lazy load from memory.
        db.session.expunge_all()
        with counted_statements() as statements:
            response = client.get(path)
        assert response.status_code == 200
        return statements, len(history_rows(response.get_data(as_text=True)))

    carla, mia = db.session.get(User, carla_id), db.session.get(User, mia_id)
    first = completed_session(carla, mia, "diagnostic", lines=[(carla, "hi"), (mia, "hello")], files=1, rating=5)
    add_report(first, mia)
    with_one, rows = statements_for_one_page()
    assert rows == 1

    carla, mia = db.session.get(User, carla_id), db.session.get(User, mia_id)
    for n in range(29):
        session = completed_session(carla, mia, ("chat10", "video15", "diagnostic")[n % 3],
                                    lines=[(carla, f"line {n}")], files=n % 2, rating=(n % 5) + 1)
        if n % 3 == 2:
            add_report(session, mia)
    with_thirty, rows = statements_for_one_page()

    assert rows == 20
    assert len(with_thirty) == len(with_one), "\n".join(["1 session:", *with_one, "30 sessions:", *with_thirty])
    assert len(with_one) <= 4  # the user, the notices, the count, the page


# --- the summary page: header and the way back --------------------------------------------------


def test_summary_header_names_the_other_party_and_back_goes_to_the_viewers_history(cast, login):
    carla, mia, ada = cast["carla"], cast["mia"], cast["ada"]
    session = completed_session(carla, mia, "video15", minutes=31, rating=3)
    url = f"/room/{session.id}/summary"

    def header_and_back(user):
        html = login(user).get(url).get_data(as_text=True)
        facts = dict(zip([_text(dt) for dt in find(html, "summary-header").iter(NS + "dt")],
                         [_text(dd) for dd in find(html, "summary-header").iter(NS + "dd")], strict=True))
        back = [a for a in tinyhtml5.parse(html).iter(NS + "a") if _text(a).startswith("← Back")]
        return _text(find(html, "summary-header").find(f"{NS}h2")), facts, (_text(back[-1]), back[-1].get("href"))

    plan, facts, back = header_and_back(carla)
    assert plan == "Standard Video"
    assert facts["Mechanic"] == "Mia Wrench" and "Customer" not in facts
    assert facts["Date"] == "Nov 24, 2026 09:00 UTC" and facts["Duration"] == "31 min"
    assert facts["Status"] == "Completed"
    assert "Rating" not in facts  # the customer sees their own rating in the rating card below
    assert back == ("← Back to my session history", "/customer/sessions")

    plan, facts, back = header_and_back(mia)
    assert facts["Customer"] == "Carla Driver" and "Mechanic" not in facts
    assert facts["Rating"] == "★★★☆☆"
    assert back == ("← Back to my session history", "/mechanic/sessions")

    plan, facts, back = header_and_back(ada)
    assert facts["Customer"] == "Carla Driver" and facts["Mechanic"] == "Mia Wrench"
    assert back == ("← Back to the admin dashboard", "/admin/")


def test_summary_of_a_cancelled_session_says_it_never_started(cast, login):
    carla = cast["carla"]
    session = cancelled_session(carla)
    html = login(carla).get(f"/room/{session.id}/summary").get_data(as_text=True)
    header = find(html, "summary-header")
    facts = {_text(dt): _text(dd) for dt, dd in zip(header.iter(NS + "dt"), header.iter(NS + "dd"), strict=True)}
    assert facts["Duration"] == "Not started" and facts["Mechanic"] == "Not assigned"
    assert facts["Status"] == "Cancelled"


# --- on a phone ---------------------------------------------------------------------------------


@pytest.mark.e2e
def test_on_a_360px_phone_rows_are_cards_and_paging_keeps_the_address(live_server, browser):
    """The list on a narrow screen: no sideways scrolling, each session a labelled card with a
    full-width button; "Older" swaps the list in place, the address follows, Back returns."""
    from playwright.sync_api import expect

    email = seed_live_history(live_server, sessions=22)
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(live_server.url + "/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", "correct-horse-battery")
        page.click("button[type=submit]")
        page.click("nav >> text=History")
        expect(page).to_have_url(re.compile(r"/customer/sessions$"))
        expect(page.locator("#history-count")).to_have_text("Showing 1–20 of 22 sessions")

        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        expect(page.locator(".history-table thead")).to_have_css("position", "absolute")
        card = page.locator(".history-table tbody tr").first
        expect(card).to_have_css("display", "block")
        label = card.locator("td[data-label=Plan]").evaluate("td => getComputedStyle(td, '::before').content")
        assert label == '"Plan"'
        button = card.locator("td.actions .button")
        box, card_box = button.bounding_box(), card.bounding_box()
        assert box["height"] >= 44 and box["width"] > card_box["width"] - 40

        first_id = card.get_attribute("id")
        page.click("a[rel=next]")
        expect(page).to_have_url(re.compile(r"/customer/sessions\?page=2$"))
        expect(page.locator("#history-count")).to_have_text("Showing 21–22 of 22 sessions")
        expect(page.locator(".history-table tbody tr")).to_have_count(2)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360

        page.go_back()
        expect(page.locator("#history-count")).to_have_text("Showing 1–20 of 22 sessions")
        expect(page.locator(".history-table tbody tr").first).to_have_attribute("id", first_id)

        page.locator(".history-table tbody tr").first.locator("td.actions .button").click()
        expect(page).to_have_url(re.compile(r"/room/\d+/summary$"))
        expect(page.locator("#summary-header")).to_contain_text("History Mechanic")
        page.click("text=← Back to my session history")
        expect(page).to_have_url(re.compile(r"/customer/sessions$"))
    finally:
        context.close()


def seed_live_history(live_server, sessions):
    """A fresh customer on the live server's database with `sessions` sessions (the newest
    one completed with a mechanic of its own), made by the real services through an app
    bound to that database and its Redis (jobs go to the live worker). Returns the e-mail."""
    import uuid

    import config
    from autodoctor import create_app

    class LiveCfg(config.TestConfig):
        SQLALCHEMY_DATABASE_URI = live_server.database_url
        SQLALCHEMY_ENGINE_OPTIONS = {}
        REDIS_URL = live_server.env["REDIS_URL"]
        UPLOAD_DIR = live_server.env["UPLOAD_DIR"]
        PUBLIC_URL = live_server.url

    tag = uuid.uuid4().hex[:8]
    app = create_app(LiveCfg)
    with app.test_request_context():
        customer = UserFactory("customer", f"history-{tag}@example.com", "Phone Customer")
        mechanic = UserFactory("mechanic", f"history-mech-{tag}@example.com", "History Mechanic")
        db.session.commit()
        for _ in range(sessions - 1):
            cancelled_session(customer)
        completed_session(customer, mechanic, lines=[(customer, "Hello from the driveway")], rating=5)
        email = customer.email
        clock.reset()
        db.session.remove()
        db.engine.dispose()
    return email
