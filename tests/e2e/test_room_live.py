"""The live room in two browsers: typing and "seen" show on the other side; the server's
5- and 1-minute warnings appear on both screens; a +15 minute extension bought in a new
tab moves both timers; at zero the session ends by itself and both screens go to the
summary. The session's end time is moved in the database to shorten the wait (the server
reads the clock as usual: warnings come from the sweep, the end from the sweep or job)."""
import re
from datetime import datetime, timedelta

import psycopg
import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import DEMO_PASSWORD, fill_intake, log_in, signup

pytestmark = pytest.mark.e2e


def set_time_left(live_server, session_id, seconds):
    url = live_server.database_url.replace("postgresql+psycopg://", "postgresql://")
    ends_at = datetime.utcnow() + timedelta(seconds=seconds)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE sessions SET ends_at = %s WHERE id = %s AND status = 'live'", (ends_at, session_id))


def minutes_shown(page):
    text = page.locator("#timer").inner_text()
    match = re.fullmatch(r"(\d+):(\d\d)", text)
    return int(match.group(1)) if match else None


def test_typing_seen_warnings_extension_and_end_at_zero(live_server, browser):
    base = live_server.url
    mechanic_ctx, customer_ctx = browser.new_context(), browser.new_context()
    mechanic, customer = mechanic_ctx.new_page(), customer_ctx.new_page()
    try:
        log_in(mechanic, base, "raj@autodoctor.example", DEMO_PASSWORD)
        signup(customer, base, "tess@example.com", name="Tess Owner")
        fill_intake(customer, base, plan="chat10")
        customer.fill("input[name=card_number]", "4242 4242 4242 4242")
        customer.click("button:has-text('Pay')")
        card = mechanic.locator(".request", has_text="Grinding noise")
        expect(card).to_be_visible(timeout=10000)
        card.locator("button.accept").click()
        expect(mechanic).to_have_url(re.compile(r"/room/\d+$"))
        expect(customer).to_have_url(re.compile(r"/room/\d+$"), timeout=10000)
        session_id = int(customer.url.rsplit("/", 1)[1])
        expect(customer.locator("#timer")).to_be_visible(timeout=10000)
        expect(mechanic.locator("#timer")).to_have_text(re.compile(r"^(29|30):\d\d$"))
        expect(mechanic.locator("#connection-state")).to_have_text("Connected")
        expect(customer.locator("#connection-state")).to_have_text("Connected")

        # Typing shows on the other side only, and clears by itself.
        customer.locator("#chat-body").press_sequentially("The brakes squeal", delay=20)
        expect(mechanic.locator("#typing")).to_have_text("Tess is typing…")
        expect(customer.locator("#typing")).to_have_text("")
        expect(mechanic.locator("#typing")).to_have_text("", timeout=8000)

        # "Seen" appears under my line once the other person's screen has shown it.
        mechanic.fill("#chat-body", "Front or rear?")
        mechanic.press("#chat-body", "Enter")
        expect(customer.locator("#chat-log")).to_contain_text("Front or rear?")
        expect(mechanic.locator("#chat-log .msg.mine.seen")).to_have_count(1)
        expect(mechanic.locator("#chat-log .msg.mine.seen")).to_contain_text("Front or rear?")

        # 5- and 1-minute warnings, pushed by the server to both screens.
        set_time_left(live_server, session_id, 4 * 60 + 30)
        for page in (customer, mechanic):
            expect(page.locator("#time-warning")).to_contain_text("5 minutes left", timeout=10000)
            expect(page.locator("#timer")).to_have_text(re.compile(r"^4:[0-2]\d$"))
            expect(page.locator("#timer")).to_have_class(re.compile("warning"))
        set_time_left(live_server, session_id, 50)
        for page in (customer, mechanic):
            expect(page.locator("#time-warning")).to_contain_text("1 minute left", timeout=10000)
            expect(page.locator("#timer")).to_have_class(re.compile("critical"))

        # The customer buys 15 more minutes in a new tab; both timers move.
        expect(mechanic.locator("#extension")).to_have_count(0)
        with customer_ctx.expect_page() as new_tab:
            customer.click("#extension button")
        checkout = new_tab.value
        expect(checkout.locator("h1")).to_have_text("Pay $4.99")
        checkout.fill("input[name=card_number]", "4242 4242 4242 4242")
        checkout.click("button:has-text('Pay')")
        expect(checkout.locator("#extension-result h1")).to_have_text("15 minutes added")
        for page in (customer, mechanic):
            expect(page.locator("#room-status")).to_contain_text("(+15 min added)", timeout=10000)
            expect(page.locator("#time-warning")).to_have_count(0)
            assert minutes_shown(page) in (15, 16)
        checkout.close()
        live_server.wait_for_mail("tess@example.com", "Receipt: +15 minutes")

        # At zero the session ends by itself; both screens move to the summary.
        set_time_left(live_server, session_id, 2)
        expect(customer).to_have_url(re.compile(rf"/room/{session_id}/summary$"), timeout=15000)
        expect(mechanic).to_have_url(re.compile(rf"/room/{session_id}/summary$"), timeout=15000)
        expect(customer.locator("body")).to_contain_text("time limit reached")
    finally:
        mechanic_ctx.close()
        customer_ctx.close()
