"""An admin refunds a finished session from its page and the ledger shows it; the customer
sees the refund on their summary. An admin observes a live room read-only: a line a
participant sends appears on the observer's page as it is sent, and the participants never
see the admin."""
import re
import uuid

import pytest
from playwright.sync_api import expect

from autodoctor.extensions import db
from autodoctor.services import chat, lifecycle
from tests.e2e.helpers import log_in, open_room
from tests.factories import UserFactory

pytestmark = pytest.mark.e2e


def make_admin(live_app):
    with live_app.test_request_context():
        admin = UserFactory("admin", f"admin-{uuid.uuid4().hex[:8]}@example.com", "Ada Admin")
        db.session.commit()
        email = admin.email
        db.session.remove()
    return email


def go_live(live_app, made):
    with live_app.test_request_context():
        from autodoctor.models import ConsultSession

        session = db.session.get(ConsultSession, made.id)
        for user_id in (session.customer_id, session.mechanic_id):
            lifecycle.join_room(made.id, user_id)
            db.session.commit()
        assert lifecycle.maybe_go_live(made.id)
        db.session.commit()
        ids = (session.customer_id, session.mechanic_id)
        db.session.remove()
    return ids


def complete(live_app, made):
    customer_id, mechanic_id = go_live(live_app, made)
    with live_app.test_request_context():
        chat.post_message(made.id, customer_id, "My brakes squeal when cold.")
        db.session.commit()
        lifecycle.end_session(made.id, mechanic_id, "Pads are glazed; replace them.")
        db.session.commit()
        db.session.remove()


def balance(page, account):
    text = page.locator(f"#ledger-balances [data-account='{account}'] dd").inner_text()
    return round(float(text.replace("$", "").replace(",", "")) * 100)


def test_admin_refunds_a_session_and_the_ledger_shows_it(live_server, live_app, browser, accepted_session):
    base = live_server.url
    made = accepted_session("chat10")
    complete(live_app, made)
    admin_email = make_admin(live_app)
    context, customer_context = browser.new_context(), browser.new_context()
    try:
        page = log_in(context.new_page(), base, admin_email)
        page.goto(f"{base}/admin/sessions/{made.id}")
        expect(page.locator("h1")).to_contain_text(f"Session #{made.id}")
        expect(page.locator("#transcript")).to_contain_text("My brakes squeal when cold.")
        mechanic_account = page.locator("#ledger-balances [data-account^='mechanic:']").get_attribute("data-account")
        platform, mechanic = balance(page, "platform"), balance(page, mechanic_account)
        assert balance(page, "escrow") == 0 and platform > 0 and mechanic > 0
        paid = platform + mechanic
        expect(page.locator("#ledger-rows tr.ledger-refund")).to_have_count(0)

        # A partial refund of $5.00: the platform and the mechanic each give back their share.
        page.locator("#refund-form input[value=partial]").check()
        page.fill("#refund-form input[name='refund-amount']", "5.00")
        page.fill("#refund-form textarea[name='refund-reason']", "Audio dropped for ten minutes")
        page.click("#refund-form button[type=submit]")
        expect(page.locator("#flash")).to_contain_text("Refunded $5.00 ($5.00 to the card).")
        expect(page).to_have_url(re.compile(rf"/admin/sessions/{made.id}$"))
        refund_rows = page.locator("#ledger-rows tr.ledger-refund")
        expect(refund_rows.first).to_be_visible()
        assert refund_rows.count() == 3  # platform, mechanic, card
        new_platform, new_mechanic = balance(page, "platform"), balance(page, mechanic_account)
        assert (platform - new_platform) + (mechanic - new_mechanic) == 500
        assert new_platform < platform and new_mechanic < mechanic
        assert balance(page, "escrow") == 0
        assert balance(page, "customer") == -(paid - 500)
        expect(page.locator("#audit")).to_contain_text("Audio dropped for ten minutes")
        expect(page.locator("#refundable")).to_have_text(f"${(paid - 500) / 100:,.2f}")

        # The rest, in full.
        page.locator("#refund-form input[value=full]").check()
        page.fill("#refund-form textarea[name='refund-reason']", "Goodwill: refund everything")
        page.click("#refund-form button[type=submit]")
        expect(page.locator("#flash")).to_contain_text(f"Refunded ${(paid - 500) / 100:,.2f}")
        expect(page.locator("#refund-form")).to_contain_text("Nothing is left to refund")
        assert balance(page, "platform") == 0 and balance(page, mechanic_account) == 0
        assert balance(page, "customer") == 0
        assert page.locator("#ledger-rows tr.ledger-refund").count() == 6
        expect(page.locator("#payments")).to_contain_text("refunded")

        # The customer sees both refunds on their session summary (never the admin's reasons).
        customer = log_in(customer_context.new_page(), base, made.customer)
        customer.goto(f"{base}/room/{made.id}/summary")
        timeline = customer.locator(".timeline")
        expect(timeline).to_contain_text("Refunded $5.00 by an admin")
        expect(timeline).to_contain_text(f"Refunded ${(paid - 500) / 100:,.2f} by an admin")
        expect(customer.locator("body")).not_to_contain_text("Audio dropped")
    finally:
        context.close()
        customer_context.close()


def test_observer_sees_a_line_live_and_stays_invisible(live_server, live_app, browser, accepted_session):
    base = live_server.url
    made = accepted_session("chat10", customer_name="Olive Owner", mechanic_name="Pete Pistons")
    admin_email = make_admin(live_app)
    admin_context, customer_context, mechanic_context = browser.new_context(), browser.new_context(), \
        browser.new_context()
    try:
        customer = open_room(customer_context, base, made.customer, made.id)
        mechanic = open_room(mechanic_context, base, made.mechanic, made.id)
        expect(customer.locator("#timer")).to_be_visible(timeout=10000)

        admin = log_in(admin_context.new_page(), base, admin_email)
        admin.goto(f"{base}/admin/sessions/{made.id}")
        admin.click("text=Observe the room")
        expect(admin).to_have_url(re.compile(rf"/admin/sessions/{made.id}/observe$"))
        expect(admin.locator("#observe-status")).to_contain_text("Live now")
        expect(admin.locator("#chat-form")).to_have_count(0)
        admin.wait_for_timeout(1000)  # the stream is connected (its first bytes came with the status)

        customer.fill("#chat-body", "Can you hear the rattle?")
        customer.press("#chat-body", "Enter")
        expect(admin.locator("#chat-log")).to_contain_text("Can you hear the rattle?", timeout=10000)
        mechanic.fill("#chat-body", "Yes — sounds like a heat shield.")
        mechanic.press("#chat-body", "Enter")
        expect(admin.locator("#chat-log")).to_contain_text("Yes — sounds like a heat shield.", timeout=10000)
        expect(admin.locator("#chat-log .msg")).to_have_count(2)

        # The participants see only each other.
        for page in (customer, mechanic):
            expect(page.locator("#room-status")).not_to_contain_text("Ada")
            expect(page.locator("#room-status")).not_to_contain_text("admin")
            expect(page.locator("#typing")).to_have_text("")

        # The admin ends it: the observer's status and both rooms follow.
        admin.goto(f"{base}/admin/sessions/{made.id}")
        admin.fill("#force-end-form textarea[name='end-reason']", "Test over")
        admin.click("#force-end-form button[type=submit]")
        expect(admin.locator("#session-header")).to_contain_text("Ended by an admin")
        expect(customer).to_have_url(re.compile(rf"/room/{made.id}/summary$"), timeout=10000)
        expect(mechanic).to_have_url(re.compile(rf"/room/{made.id}/summary$"), timeout=10000)
    finally:
        for ctx in (admin_context, customer_context, mechanic_context):
            ctx.close()
