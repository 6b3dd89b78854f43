"""An admin rescues an unattended request in real browsers, three people at once: the customer
waits on their waiting page, the mechanic has the dashboard open, the admin has the dashboard
and the queue open. The admin assigns the request to the mechanic from the dashboard; without a
reload the customer's waiting page moves on to the room, the mechanic's dashboard shows the
session, and the request leaves the admin's other tab, whose unattended count drops."""
import re
import uuid
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from autodoctor.extensions import db
from autodoctor.models import SessionRequest
from autodoctor.services import lifecycle
from tests.e2e.helpers import log_in
from tests.factories import PaidSessionFactory, UserFactory

pytestmark = pytest.mark.e2e

SSE_OPEN = "document.addEventListener('htmx:sseOpen', function () { window.__sseOpen = true; });"


def _people_and_request(live_app, tag):
    """A paid request of a new customer, a free approved mechanic (offline) and an admin."""
    with live_app.test_request_context():
        admin = UserFactory("admin", f"admin-{tag}@example.com", f"Ada Admin {tag}")
        mechanic = UserFactory("mechanic", f"aaron-{tag}@example.com", f"Aaron Assign {tag}")
        customer = UserFactory("customer", f"una-{tag}@example.com", "Una Waiting")
        db.session.commit()
        session = PaidSessionFactory(customer)
        db.session.commit()
        made = {"admin": admin.email, "mechanic": mechanic.email, "mechanic_id": mechanic.id,
                "customer": customer.email, "session_id": session.id, "request_id": session.current_request.id}
        db.session.remove()
    return made


def _make_unattended(live_app, request_id):
    """Five minutes have passed with no mechanic: the request goes to the admin queue (the
    event reaches the server's streams through Redis, as the sweep's would)."""
    with live_app.test_request_context():
        request = db.session.get(SessionRequest, request_id)
        request.created_at -= timedelta(minutes=6)
        db.session.commit()
        assert lifecycle.mark_unattended(request_id)
        db.session.commit()
        db.session.remove()


def _page(browser, base, email, path, viewport=None):
    context = browser.new_context(viewport=viewport or {"width": 1024, "height": 900})
    context.add_init_script(SSE_OPEN)
    page = log_in(context.new_page(), base, email)
    page.goto(base + path)
    page.wait_for_function("window.__sseOpen === true")
    page.evaluate("window.__sameDocument = true")
    return context, page


def test_admin_assigns_an_unattended_request_and_everyone_sees_it_live(live_server, live_app, browser):
    tag = uuid.uuid4().hex[:8]
    made = _people_and_request(live_app, tag)
    base, session_id, request_id = live_server.url, made["session_id"], made["request_id"]
    contexts = []
    try:
        customer_ctx, customer = _page(browser, base, made["customer"], f"/customer/sessions/{session_id}",
                                       viewport={"width": 360, "height": 740})
        mechanic_ctx, mechanic = _page(browser, base, made["mechanic"], "/mechanic/")
        admin_ctx, dashboard = _page(browser, base, made["admin"], "/admin/")
        contexts += [customer_ctx, mechanic_ctx, admin_ctx]
        queue = admin_ctx.new_page()  # the admin's second tab
        queue.goto(base + "/admin/queue")
        queue.wait_for_function("window.__sseOpen === true")
        queue.evaluate("window.__sameDocument = true")
        expect(customer.locator("#session-status")).to_contain_text("Finding your mechanic")
        expect(mechanic.locator("#active-session")).not_to_contain_text("Your active session")
        before = int(dashboard.locator("#unattended-count").inner_text())

        _make_unattended(live_app, request_id)
        card = f"#queue-request-{request_id}"
        for page in (dashboard, queue):  # pushed to both tabs: neither was reloaded
            expect(page.locator(card)).to_be_visible()
            expect(page.locator("#unattended-count")).to_have_text(str(before + 1))
        expect(customer.locator("#session-status")).to_contain_text("our team has been alerted")
        item = dashboard.locator(card)
        expect(item).to_contain_text("Una Waiting")
        expect(item).to_contain_text("Quick Chat")
        expect(item).to_contain_text("Waiting 6 min")
        menu = item.locator(f"#assign-{request_id}")
        expect(menu.locator(f"option[value='{made['mechanic_id']}']")).to_have_text(f"Aaron Assign {tag}")

        # The card arrived over the stream, so its form has no CSRF field: the page's header carries it.
        menu.select_option(str(made["mechanic_id"]))
        item.locator("button:has-text('Assign')").click()
        expect(dashboard.locator(".flash.success")).to_have_text(
            f"Session #{session_id} assigned to Aaron Assign {tag}.")
        expect(dashboard.locator(card)).to_have_count(0)

        expect(customer).to_have_url(re.compile(rf"/room/{session_id}$"), timeout=10000)
        active = mechanic.locator("#active-session")
        expect(active).to_contain_text("Your active session: Quick Chat")
        expect(active).to_contain_text("Una Waiting")
        expect(active.locator("a:has-text('Go to the room')")).to_have_attribute("href", f"/room/{session_id}")
        expect(queue.locator(card)).to_have_count(0)
        expect(queue.locator("#unattended-count")).to_have_text(str(before))
        assert mechanic.evaluate("window.__sameDocument") and queue.evaluate("window.__sameDocument"), \
            "a page was reloaded"
    finally:
        for context in contexts:
            context.close()
