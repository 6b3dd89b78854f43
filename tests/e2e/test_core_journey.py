"""The core loop in a real browser, two people at once: a customer pays, the mechanic's
already-open dashboard shows the request without reload, the mechanic accepts, both chat
in the room, the mechanic ends with notes, the customer rates."""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import DEMO_PASSWORD, fill_intake, log_in, signup

pytestmark = pytest.mark.e2e


def test_customer_and_mechanic_complete_a_session(live_server, browser):
    base = live_server.url
    mechanic_ctx, customer_ctx = browser.new_context(), browser.new_context()
    mechanic, customer = mechanic_ctx.new_page(), customer_ctx.new_page()
    try:
        log_in(mechanic, base, "mia@autodoctor.example", DEMO_PASSWORD)
        expect(mechanic.locator("#live-indicator")).to_be_visible()
        expect(mechanic.locator("#no-requests")).to_be_visible()

        signup(customer, base, "sam@example.com")
        fill_intake(customer, base)
        expect(customer).to_have_url(re.compile(r"/checkout/\d+/test$"))
        customer.fill("input[name=card_number]", "4242 4242 4242 4242")
        customer.click("button:has-text('Pay')")
        expect(customer.locator("#session-status")).to_contain_text("Finding your mechanic")

        card = mechanic.locator(".request", has_text="Grinding noise")
        expect(card).to_be_visible(timeout=5000)  # pushed over SSE; the page was never reloaded
        card.locator("button.accept").click()
        expect(mechanic).to_have_url(re.compile(r"/room/\d+$"))
        expect(customer).to_have_url(re.compile(r"/room/\d+$"), timeout=10000)

        expect(customer.locator("#timer")).to_be_visible(timeout=10000)
        expect(mechanic.locator("#connection-state")).to_have_text("Connected")
        customer.fill("#chat-body", "Hi, the noise <b>starts</b> at low speed.")
        customer.press("#chat-body", "Enter")
        expect(mechanic.locator("#chat-log")).to_contain_text("the noise <b>starts</b> at low speed")
        mechanic.fill("#chat-body", "Sounds like worn brake pads.")
        mechanic.press("#chat-body", "Enter")
        expect(customer.locator("#chat-log")).to_contain_text("Sounds like worn brake pads.")
        expect(customer.locator("#chat-log .msg")).to_have_count(2)

        mechanic.fill("textarea[name=notes]", "Replace front pads; check rotor thickness.")
        mechanic.click("button:has-text('End session')")
        expect(mechanic).to_have_url(re.compile(r"/summary$"))
        expect(customer).to_have_url(re.compile(r"/summary$"), timeout=10000)
        expect(customer.locator("#notes")).to_contain_text("Replace front pads")
        customer.check("input[name=rating][value='5']")
        customer.fill("textarea[name=review]", "Quick and clear.")
        customer.click("button:has-text('Send rating')")
        expect(customer.locator("#rating .stars")).to_have_text("★★★★★")
        live_server.wait_for_mail("sam@example.com", "Receipt")
        live_server.wait_for_mail("sam@example.com", "summary")
    finally:
        mechanic_ctx.close()
        customer_ctx.close()


def test_declined_card_creates_no_session(live_server, browser):
    base = live_server.url
    ctx = browser.new_context()
    page = ctx.new_page()
    try:
        signup(page, base, "declined@example.com", "Dee Clined")
        fill_intake(page, base)
        page.fill("input[name=card_number]", "4000 0000 0000 0002")
        page.click("button:has-text('Pay')")
        expect(page.locator(".error")).to_contain_text("declined")
        page.goto(base + "/customer/")
        expect(page.locator("body")).to_contain_text("No active session")
    finally:
        ctx.close()


def test_taken_request_vanishes_from_other_dashboards(live_server, browser):
    base = live_server.url
    contexts = [browser.new_context(viewport={"width": 800, "height": 1000}) for _ in range(3)]
    first, second, customer = (ctx.new_page() for ctx in contexts)
    try:
        log_in(first, base, "raj@autodoctor.example", DEMO_PASSWORD)
        log_in(second, base, "lena@autodoctor.example", DEMO_PASSWORD)
        for page in (first, second):
            expect(page.locator("#live-indicator")).to_be_visible()
        signup(customer, base, "third@example.com", "Tia Third")
        fill_intake(customer, base)
        customer.fill("input[name=card_number]", "4242424242424242")
        customer.click("button:has-text('Pay')")
        expect(customer.locator("#session-status")).to_contain_text("Finding your mechanic")
        card_first = first.locator(".request", has_text="Grinding noise")
        card_second = second.locator(".request", has_text="Grinding noise")
        expect(card_first).to_be_visible()
        expect(card_second).to_be_visible()
        request_id = card_second.get_attribute("id").split("-")[1]
        card_first.locator("button.accept").click()
        expect(first).to_have_url(re.compile(r"/room/\d+$"))
        expect(card_second).to_have_count(0)  # gone from the other dashboard without a reload
        # A tap that was already on its way when the card vanished gets a clear answer.
        second.evaluate(f"htmx.ajax('POST', '/mechanic/requests/{request_id}/accept', "
                        "{target: '#request-list', swap: 'afterbegin'})")
        expect(second.locator(".request.taken")).to_contain_text("Another mechanic already accepted this request.")
        # Leave the shared demo mechanic free for the journeys that follow.
        expect(customer).to_have_url(re.compile(r"/room/\d+$"), timeout=10000)
        expect(first.locator("#timer")).to_be_visible(timeout=10000)
        first.fill("textarea[name=notes]", "Test over.")
        first.click("button:has-text('End session')")
        expect(first).to_have_url(re.compile(r"/summary$"))
    finally:
        for ctx in contexts:
            ctx.close()
