"""Scheduling in a real browser on a phone in London: a new customer picks online, adds a
vehicle, a plan, a mechanic, a day and a time (the page never reloads, times on the London
clock), describes the concern with a photo (kept while they change the time), reviews, holds
it, pays with the test card and lands on the appointments page; the appointment is booked with
the intake and no waiver yet. And "Schedule for later instead" from the book-now wizard keeps
what the customer entered there."""
import io
import re
import uuid

import pytest
from PIL import Image
from playwright.sync_api import expect

from autodoctor.extensions import db
from autodoctor.models import Appointment
from autodoctor.services import availability, working_hours
from tests.e2e.helpers import signup, wizard_step
from tests.factories import UserFactory

pytestmark = pytest.mark.e2e

PHONE = {"width": 360, "height": 740}
CONCERN = "Grinding noise from the front left wheel when braking, worse when cold."


def _png():
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, format="PNG")
    return {"name": "wheel.png", "mimeType": "image/png", "buffer": buf.getvalue()}


def _mechanic(live_app):
    """A mechanic in Toronto working every day around the clock, so there are times whenever the test runs."""
    tag = uuid.uuid4().hex[:8]
    with live_app.test_request_context():
        mechanic = UserFactory("mechanic", f"sched-{tag}@example.com", f"Sky Scheduler {tag}")
        working_hours.update_settings(mechanic.id, "America/Toronto", 0, "", 30)
        working_hours.replace_week(mechanic.id, {day: [("00:00", "24:00")] for day in range(7)})
        db.session.commit()
        return mechanic.id, mechanic.full_name


def test_a_new_customer_schedules_pays_and_is_booked(live_server, live_app, browser):
    mechanic_id, mechanic_name = _mechanic(live_app)
    context = browser.new_context(viewport=PHONE, timezone_id="Europe/London", has_touch=True)
    page = context.new_page()
    base = live_server.url
    try:
        signup(page, base, f"planner-{uuid.uuid4().hex[:8]}@example.com")
        page.get_by_role("link", name="Schedule for later").click()
        expect(page).to_have_url(re.compile(r"/customer/schedule$"))
        page.evaluate("window.__sameDocument = true")

        page.locator("input[name=kind][value=online]").check()
        page.locator("input[name=vehicle][value=new]").check()
        page.fill("#vehicle-year", "2011")
        page.fill("#vehicle-make", "Honda")
        page.fill("#vehicle-model", "Civic")
        page.locator("input[name=plan][value=chat10]").check()
        expect(page.locator("#vehicle-make")).to_have_value("Honda")  # typing survives the redraw
        mechanic = page.locator(f"#mechanic-{mechanic_id}")
        expect(mechanic).to_contain_text(mechanic_name)
        expect(mechanic).to_contain_text("Next free:")
        mechanic.locator("input").check()
        page.locator("#step-day .schedule-choice.day:not(.unavailable) input").last.check()
        expect(page.locator("[data-zone-label]")).to_have_text("Europe/London")
        expect(page.locator("#step-concern")).to_be_hidden()
        page.locator("input[name=starts_at]").first.check()

        concern = page.locator("#step-concern")
        expect(concern).to_be_visible()
        page.fill("#schedule-concern", CONCERN)
        page.fill("#schedule-city", "London")
        page.select_option("#schedule-country", "GB")
        page.set_input_files("#schedule-photos", [_png()])
        # Changing the time redraws the steps: the text and the picked photo stay.
        last_time = page.locator("input[name=starts_at]").last
        starts_at = last_time.get_attribute("value")
        shown = page.locator("#step-time .schedule-choice.time").last.inner_text().strip()
        last_time.check()
        expect(page.locator("input[name=starts_at]:checked")).to_have_value(starts_at)
        expect(page.locator("#schedule-concern")).to_have_value(CONCERN)
        expect(page.locator("#schedule-city")).to_have_value("London")
        assert page.evaluate("document.querySelector('#schedule-photos').files.length") == 1
        page.get_by_role("button", name="Review").click()

        review = page.locator("#step-review")
        expect(review).to_contain_text(mechanic_name)
        expect(review).to_contain_text("$9.99")
        expect(review.locator("#review-vehicle")).to_have_text("2011 Honda Civic")
        expect(review.locator("#review-concern")).to_have_text(CONCERN)
        expect(review.locator("#review-photos")).to_have_text("1 photo")
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
            .map(e => e.tagName + '.' + e.className + '#' + e.id + ':' + Math.round(e.getBoundingClientRect().right))""")
        assert not wide, wide  # fits 360 px
        assert page.evaluate("window.__sameDocument") is True  # every step came by HTMX
        review.get_by_role("button", name="Hold this time and pay").click()

        expect(page).to_have_url(re.compile(r"/checkout/\d+/test$"))
        page.fill("input[name=card_number]", "4242 4242 4242 4242")
        page.click("button:has-text('Pay')")
        expect(page).to_have_url(re.compile(r"/customer/appointments"))
        expect(page.locator("body")).to_contain_text("Your appointment is booked.")
    finally:
        context.close()

    with live_app.app_context():
        appointment = db.session.scalar(db.select(Appointment).where(Appointment.mechanic_id == mechanic_id))
        assert appointment.status == "booked"
        assert appointment.customer_time_zone == "Europe/London"
        assert appointment.starts_at.strftime("%Y-%m-%dT%H:%M") == starts_at
        # The time the customer picked was on the London clock.
        assert availability.local(appointment.starts_at, "Europe/London").strftime("%H:%M") == shown
        intake = appointment.intake
        assert (intake.concern, intake.city, intake.country) == (CONCERN, "London", "GB")
        assert str(intake.vehicle) == "2011 Honda Civic" and [p.original_name for p in intake.photos] == ["wheel.png"]
        assert intake.waiver is None  # signed on the day
        db.session.remove()


def test_schedule_instead_keeps_what_was_typed_on_book_now(live_server, live_app, browser):
    _mechanic(live_app)
    context = browser.new_context(viewport=PHONE, timezone_id="Europe/London")
    page = context.new_page()
    try:
        signup(page, live_server.url, f"later-{uuid.uuid4().hex[:8]}@example.com")
        # The book-now wizard up to the waiver; "Schedule for later instead" carries its draft over.
        page.fill("input[name=year]", "2011")
        page.fill("input[name=make]", "Honda")
        page.fill("input[name=model]", "Civic")
        page.click("#book-next")
        wizard_step(page, "plan")
        page.locator("input[name=plan][value=video15]").check()
        page.click("#book-next")
        wizard_step(page, "mechanic")
        page.click("#book-next")  # any available mechanic
        wizard_step(page, "concern")
        page.fill("textarea[name=concern]", CONCERN)
        page.fill("input[name=city]", "Leeds")
        page.select_option("select[name=country]", "GB")
        page.click("#book-next")
        wizard_step(page, "waiver")
        page.locator("#schedule-instead").click()

        expect(page).to_have_url(re.compile(r"/customer/schedule\?"))
        assert "csrf_token" not in page.url
        expect(page.locator("#schedule-carried")).to_contain_text("We kept what you entered")
        page.locator("input[name=kind][value=online]").check()
        expect(page.locator("input[type=radio][name=vehicle][value=new]")).to_be_checked()
        expect(page.locator("#vehicle-make")).to_have_value("Honda")
        expect(page.locator("input[type=radio][name=plan][value=video15]")).to_be_checked()
        expect(page.locator("#schedule-concern")).to_have_value(CONCERN)
        expect(page.locator("#schedule-city")).to_have_value("Leeds")
    finally:
        context.close()
