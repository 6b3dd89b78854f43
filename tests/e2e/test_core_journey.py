"""The core loop in a real browser, two people at once: a customer pays, the mechanic's
already-open dashboard shows the request without reload, the mechanic accepts, both chat
in the room, the mechanic ends with notes, the customer rates."""
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e
DEMO_PASSWORD = "autodoctor-demo"


def login(page, base, email):
    page.goto(base + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")


def fill_intake(page, base, plan="chat10"):
    page.goto(f"{base}/customer/intake?plan={plan}")
    page.fill("input[name=year]", "2011")
    page.fill("input[name=make]", "Honda")
    page.fill("input[name=model]", "Civic")
    page.fill("input[name=vin]", "1HGCM82633A004352")
    expect(page.locator("#vin-result")).to_contain_text("Honda")
    page.fill("textarea[name=concern]", "Grinding noise from the front left wheel when braking.")
    page.fill("input[name=city]", "Toronto")
    page.select_option("select[name=country]", "CA")
    page.check("input[name=accept_waiver]")
    page.click("button:has-text('Continue to payment')")


def test_customer_and_mechanic_complete_a_session(live_server, browser):
    base = live_server.url
    mechanic_ctx, customer_ctx = browser.new_context(), browser.new_context()
    mechanic, customer = mechanic_ctx.new_page(), customer_ctx.new_page()
    try:
        login(mechanic, base, "mia@autodoctor.example")
        expect(mechanic.locator("#live-indicator")).to_be_visible()
        expect(mechanic.locator("#no-requests")).to_be_visible()

        customer.goto(base + "/signup")
        customer.fill("input[name=full_name]", "Sam Driver")
        customer.fill("input[name=email]", "sam@example.com")
        customer.fill("input[name=password]", "a-long-enough-password")
        customer.fill("input[name=confirm]", "a-long-enough-password")
        customer.click("button[type=submit]")
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
        login(page, base, "dev@autodoctor.example")
        fill_intake(page, base)
        page.fill("input[name=card_number]", "4000 0000 0000 0002")
        page.click("button:has-text('Pay')")
        expect(page.locator(".error")).to_contain_text("declined")
        page.goto(base + "/customer/")
        expect(page.locator("body")).to_contain_text("No active session")
    finally:
        ctx.close()
