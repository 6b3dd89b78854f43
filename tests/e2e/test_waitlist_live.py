"""The waitlist in a real browser, three contexts: with every mechanic offline a customer joins
the waitlist and sees position 1, a second customer joins and sees position 2; a mechanic opens
the dashboard and switches "Taking requests" on; both customers' pages say a mechanic is online
without a reload (the first customer was told first), the notice links to their booking, and
the e-mail arrives over SMTP."""
import re
import uuid

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from autodoctor.extensions import db
from autodoctor.models import MechanicProfile, Notification, WaitlistEntry
from tests.e2e.helpers import log_in
from tests.factories import UserFactory

pytestmark = pytest.mark.e2e

SSE_OPEN = "document.addEventListener('htmx:sseOpen', function () { window.__sseOpen = true; });"


def _people(live_app):
    tag = uuid.uuid4().hex[:8]
    with live_app.test_request_context():
        # Nobody may be online for the waitlist to take anyone (the live server is shared: only
        # presence is changed, for every mechanic, and nothing else).
        db.session.execute(sa.update(MechanicProfile).values(online=False, presence="offline"))
        first = UserFactory("customer", f"wait-1-{tag}@example.com", "Wendy First")
        second = UserFactory("customer", f"wait-2-{tag}@example.com", "Walt Second")
        mechanic = UserFactory("mechanic", f"wait-m-{tag}@example.com", f"Olga Online {tag}")
        db.session.commit()
        made = first.id, first.email, second.id, second.email, mechanic.id, mechanic.email, mechanic.full_name
        db.session.remove()
        return made


def _waitlist_page(browser, base, email):
    context = browser.new_context(viewport={"width": 360, "height": 740})  # a phone
    context.add_init_script(SSE_OPEN)
    page = log_in(context.new_page(), base, email)
    page.goto(base + "/customer/waitlist")
    page.wait_for_function("window.__sseOpen === true")
    page.evaluate("window.__sameDocument = true")
    return context, page


def _join(page, position):
    expect(page.locator("#waitlist-status")).to_contain_text("No mechanic is online right now")
    page.click("#waitlist-join")
    expect(page.locator("#waitlist-position")).to_have_text(f"number {position}")
    assert page.evaluate("window.__sameDocument") is True  # joined by HTMX, no reload


def test_waitlisted_customers_are_told_live_when_a_mechanic_comes_online(live_server, live_app, browser):
    first_id, first, second_id, second, mechanic_id, mechanic, mechanic_name = _people(live_app)
    base = live_server.url
    contexts = []
    try:
        context, page_1 = _waitlist_page(browser, base, first)
        contexts.append(context)
        _join(page_1, 1)
        expect(page_1.locator("#waitlist-status")).to_contain_text("you're next")

        context, page_2 = _waitlist_page(browser, base, second)
        contexts.append(context)
        _join(page_2, 2)

        context = browser.new_context(viewport={"width": 1024, "height": 768})  # the mechanic's tablet
        contexts.append(context)
        dashboard = log_in(context.new_page(), base, mechanic)
        dashboard.goto(base + "/mechanic/")
        switch = dashboard.get_by_role("switch", name=re.compile("Taking requests"))
        expect(switch).to_have_attribute("aria-checked", "false")
        switch.click()
        expect(dashboard.get_by_role("switch", name=re.compile("Taking requests"))).to_have_attribute(
            "aria-checked", "true")

        for page in (page_1, page_2):
            expect(page.locator("#waitlist-online")).to_have_text("A mechanic is online now!", timeout=15000)
            expect(page.locator("#waitlist-continue")).to_have_attribute("href", re.compile(r"^/customer/book"))
            notice = page.locator("#notices .notice").get_by_role("link")
            expect(notice).to_have_text(f"{mechanic_name} is online now — continue your booking.")
            expect(notice).to_have_attribute("href", re.compile(r"^/customer/book"))
            assert page.evaluate("window.__sameDocument") is True  # no reload
        email = live_server.wait_for_mail(first, "A mechanic is online now")
        assert f"{base}/customer/book" in email.get_payload(decode=True).decode()
        live_server.wait_for_mail(second, "A mechanic is online now")

        with live_app.app_context():  # told in order of joining: position 1 first
            notices = db.session.scalars(sa.select(Notification.user_id).where(
                Notification.kind == "waitlist_online", Notification.user_id.in_((first_id, second_id)))
                .order_by(Notification.id)).all()
            assert notices == [first_id, second_id]
            statuses = db.session.scalars(sa.select(WaitlistEntry.status).where(
                WaitlistEntry.customer_id.in_((first_id, second_id)))).all()
            assert statuses == ["notified", "notified"]
            db.session.remove()

        page_1.click("#waitlist-continue")  # the link resumes the booking
        expect(page_1).to_have_url(re.compile(r"/customer/book"))
    finally:
        for context in contexts:
            context.close()
        with live_app.test_request_context():  # our mechanic is not left online for the tests that follow
            db.session.execute(sa.update(MechanicProfile).where(MechanicProfile.user_id == mechanic_id)
                               .values(online=False, presence="offline"))
            db.session.commit()
            db.session.remove()
