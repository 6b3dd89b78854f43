"""The scheduled-appointment journey in real browsers, two people at once: a customer in London
schedules a mechanic in Toronto, pays, and gets the confirmation e-mail whose .ics parses back
with icalendar; moves it (the invite keeps its UID with a higher SEQUENCE); on the day (the
server's clock moved forward) the mechanic sees "Waiting for waiver", the customer types their
name and draws a signature, lands in the room, and the mechanic — whose card turned into
"Join the room" without a reload — joins; the session goes live and they chat."""
import re
import uuid
from datetime import datetime, timedelta

import pytest
from icalendar import Calendar
from playwright.sync_api import expect

from autodoctor.extensions import db
from autodoctor.models import Appointment, User
from autodoctor.services import availability
from tests.e2e.helpers import log_in, signup
from tests.e2e.test_schedule import _mechanic

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


def _invite(raw):
    (event,) = Calendar.from_ical(raw).walk("VEVENT")
    return str(event["uid"]), int(event["sequence"]), event.decoded("dtstart").replace(tzinfo=None)


def _schedule(page, base, mechanic_id):
    """Online, just advice, Quick chat, the mechanic, the last day offered, its first time."""
    page.goto(base + "/customer/schedule")
    page.locator("input[name=kind][value=online]").check()
    page.get_by_text("Just advice, no vehicle").click()
    page.locator("input[name=plan][value=chat10]").check()
    page.locator(f"#mechanic-{mechanic_id} input").check()
    page.locator("#step-day .schedule-choice.day:not(.unavailable) input").last.check()
    first_time = page.locator("input[name=starts_at]").first
    starts_at = first_time.get_attribute("value")
    first_time.check()
    page.fill("textarea[name=concern]", "Squeal from the engine bay on cold mornings, goes away after 5 minutes.")
    page.fill("input[name=city]", "London")
    page.select_option("select[name=country]", "GB")
    page.get_by_role("button", name="Review").click()
    expect(page.locator("#step-review")).to_contain_text("Squeal from the engine bay")
    page.get_by_role("button", name="Hold this time and pay").click()
    expect(page).to_have_url(re.compile(r"/checkout/\d+/test$"))
    page.fill("input[name=card_number]", "4242 4242 4242 4242")
    page.click("button:has-text('Pay')")
    expect(page).to_have_url(re.compile(r"/customer/appointments"))
    expect(page.locator("body")).to_contain_text("Your appointment is booked.")
    return datetime.strptime(starts_at, "%Y-%m-%dT%H:%M")


def _sign(page):
    """Type the name and draw a signature on the canvas with the pointer."""
    page.fill("input[name=signed_name]", "Sam Driver")
    pad = page.locator("[data-signature-pad]")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + box["height"] * 0.7)
    page.mouse.down()
    for n in range(1, 12):
        page.mouse.move(box["x"] + 20 + n * box["width"] / 14, box["y"] + box["height"] * (0.3 + 0.4 * (n % 2)))
    page.mouse.up()


def test_schedule_pay_invite_reschedule_sign_the_waiver_and_meet_in_the_room(live_server, live_app, browser):
    mechanic_id, mechanic_name = _mechanic(live_app)
    with live_app.app_context():
        mechanic_email = db.session.get(User, mechanic_id).email
    email = f"journey-{uuid.uuid4().hex[:8]}@example.com"
    base = live_server.url
    customer_ctx = browser.new_context(viewport=PHONE, timezone_id="Europe/London", has_touch=True)
    mechanic_ctx = browser.new_context(viewport={"width": 1024, "height": 768}, timezone_id="America/Toronto")
    try:
        page = customer_ctx.new_page()
        signup(page, base, email)
        starts_at = _schedule(page, base, mechanic_id)
        with live_app.app_context():
            appointment = db.session.scalar(db.select(Appointment).where(Appointment.mechanic_id == mechanic_id))
            appointment_id = appointment.id
            assert (appointment.status, appointment.starts_at) == ("booked", starts_at)
            assert appointment.intake.concern.startswith("Squeal") and appointment.intake.waiver is None

        # The confirmation e-mail carries an invite that parses back.
        message = live_server.wait_for_mail(email, "Booked:")
        (part,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
        uid, sequence, dtstart = _invite(part.get_payload(decode=True))
        assert (uid, sequence, dtstart) == (f"appointment-{appointment_id}@autodoctor", 0, starts_at)

        # Move it to another free time: same UID, higher sequence (by e-mail and by download).
        page.locator(f"#appointment-{appointment_id}").get_by_role("link", name="Reschedule").click()
        new_time = page.locator("input[name=starts_at]").first
        moved_to = datetime.strptime(new_time.get_attribute("value"), "%Y-%m-%dT%H:%M")
        new_time.check()
        page.get_by_role("button", name=re.compile("Move")).click()
        expect(page.locator("body")).to_contain_text("Moved to")
        moved_mail = live_server.wait_for_mail(email, "Moved:")
        (part,) = [p for p in moved_mail.walk() if p.get_content_type() == "text/calendar"]
        assert _invite(part.get_payload(decode=True)) == (uid, 1, moved_to)
        download = page.context.request.get(f"{base}/customer/appointments/{appointment_id}.ics")
        assert _invite(download.body()) == (uid, 1, moved_to)

        # The day comes: the server's clock moves to 10 minutes before the start.
        live_server.move_clock((moved_to - timedelta(minutes=10) - datetime.utcnow()).total_seconds())
        mechanic_page = log_in(mechanic_ctx.new_page(), base, mechanic_email)
        day = availability.local(moved_to, "America/Toronto").date().isoformat()
        mechanic_page.goto(f"{base}/mechanic/appointments?day={day}")
        card = mechanic_page.locator(f"#appointment-{appointment_id}")
        expect(card).to_contain_text("Waiting for waiver")

        page.goto(base + "/customer/appointments")
        page.locator(f"#appointment-{appointment_id}").get_by_role("link", name="Sign the waiver and join").click()
        expect(page.locator("#waiver-form")).to_contain_text("version 2026-11")
        page.fill("input[name=signed_name]", "Sam Driver")
        page.get_by_role("button", name="Sign and join").click()  # nothing drawn yet
        expect(page.locator("#waiver-form")).to_contain_text("Sign in the box")
        _sign(page)
        page.get_by_role("button", name="Sign and join").click()
        expect(page).to_have_url(re.compile(r"/room/\d+$"))
        expect(page.locator("#connection-state")).to_have_text("Connected")

        # The mechanic's card turns into "Join the room" by itself.
        expect(card.get_by_role("link", name="Join the room")).to_be_visible(timeout=20_000)
        card.get_by_role("link", name="Join the room").click()
        expect(mechanic_page.locator("#connection-state")).to_have_text("Connected")
        for screen in (page, mechanic_page):  # both in: live, the clock runs
            expect(screen.locator("#timer")).to_have_text(re.compile(r"^(29|30):\d\d$"))
        mechanic_page.locator("#chat-body").fill(f"Hi, {mechanic_name} here — tell me about the squeal.")
        mechanic_page.keyboard.press("Enter")
        expect(page.locator("#chat-log")).to_contain_text("tell me about the squeal")
        with live_app.app_context():
            appointment = db.session.get(Appointment, appointment_id)
            assert appointment.status == "started" and appointment.session.status == "live"
            waiver = appointment.intake.waiver
            assert (waiver.signed_name, waiver.signed_on) == ("Sam Driver", "customer")
            assert waiver.signature_png.startswith(b"\x89PNG") and "Chrome" in waiver.user_agent
    finally:
        live_server.move_clock(0)
        customer_ctx.close()
        mechanic_ctx.close()
