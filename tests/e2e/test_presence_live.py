"""Presence in a real browser (live server: PRESENCE_TIMEOUT_SECONDS=6, sweep every 2 s). A
customer has a mechanic's public profile open (it includes shared/_presence_stream.html); the
mechanic turns on "Taking requests" on their dashboard and the customer's badge turns online
without a reload; it stays online while the dashboard is open (its stream's keepalives are the
heartbeat) well past the window; the mechanic closes the dashboard tab and, within the window
(plus one sweep), the customer's badge says offline — still without a reload."""
import time
import uuid

import pytest
from playwright.sync_api import expect

from autodoctor.extensions import db
from autodoctor.models import MechanicProfile
from tests.e2e.helpers import log_in
from tests.factories import UserFactory

pytestmark = pytest.mark.e2e

SSE_OPEN = "document.addEventListener('htmx:sseOpen', function () { window.__sseOpen = true; });"
WINDOW = 6  # tests/conftest.py sets PRESENCE_TIMEOUT_SECONDS for the live server
SWEEP = 2


def _people(live_app):
    tag = uuid.uuid4().hex[:8]
    with live_app.test_request_context():
        customer = UserFactory("customer", f"presence-c-{tag}@example.com", "Cora Watcher")
        mechanic = UserFactory("mechanic", f"presence-m-{tag}@example.com", f"Pat Presence {tag}")
        db.session.commit()
        made = customer.email, mechanic.id, mechanic.email
        db.session.remove()
        return made


def _presence_in_db(live_app, mechanic_id):
    with live_app.app_context():
        value = db.session.scalar(db.select(MechanicProfile.presence).where(MechanicProfile.user_id == mechanic_id))
        db.session.remove()
        return value


def _open(browser, base, email, path):
    context = browser.new_context()
    context.add_init_script(SSE_OPEN)
    page = log_in(context.new_page(), base, email)
    page.goto(base + path)
    page.wait_for_function("window.__sseOpen === true")
    page.evaluate("window.__sameDocument = true")
    return context, page


def test_dashboard_toggle_shows_online_and_closing_the_tab_shows_offline(live_server, live_app, browser):
    customer, mechanic_id, mechanic = _people(live_app)
    base = live_server.url
    customer_context, profile_page = _open(browser, base, customer, f"/mechanics/{mechanic_id}")
    mechanic_context = browser.new_context()
    mechanic_context.add_init_script(SSE_OPEN)
    try:
        badge = profile_page.locator(f"#presence-{mechanic_id}")
        expect(badge).to_have_text("Offline")

        dashboard = log_in(mechanic_context.new_page(), base, mechanic)
        dashboard.goto(base + "/mechanic/")
        dashboard.wait_for_function("window.__sseOpen === true")
        switch = dashboard.locator("#presence-toggle button.switch")
        expect(switch).to_have_attribute("aria-checked", "false")
        expect(dashboard.locator("#presence-text")).to_have_text("Offline — turn on to get requests")
        switch.click()
        expect(switch).to_have_attribute("aria-checked", "true")
        expect(dashboard.locator("#presence-text")).to_have_text("Online — you get new requests")

        expect(badge).to_have_text("Online")
        expect(badge).to_have_class("presence online")

        # Well past the window with the dashboard open: the keepalives keep the mechanic online.
        time.sleep(WINDOW + 2 * SWEEP)
        assert _presence_in_db(live_app, mechanic_id) == "online"
        expect(badge).to_have_text("Online")
        expect(dashboard.locator("#presence-text")).to_have_text("Online — you get new requests")

        dashboard.close()
        closed_at = time.monotonic()
        expect(badge).to_have_text("Offline", timeout=(WINDOW + 3 * SWEEP) * 1000)
        took = time.monotonic() - closed_at
        assert took <= WINDOW + SWEEP + 2, f"offline {took:.1f} s after the tab closed"
        expect(badge).to_have_class("presence offline")
        assert _presence_in_db(live_app, mechanic_id) == "offline"
        assert profile_page.evaluate("window.__sameDocument") is True  # no reload on the customer's side

        # Back on the dashboard (the switch stayed on): online again at once.
        dashboard = mechanic_context.new_page()  # still logged in
        dashboard.goto(base + "/mechanic/")
        expect(dashboard.locator("#presence-text")).to_have_text("Online — you get new requests")
        expect(badge).to_have_text("Online")
    finally:
        customer_context.close()
        mechanic_context.close()
