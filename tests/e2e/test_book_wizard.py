"""The book-now wizard in a real browser on a 360 px phone: a new customer adds a vehicle (VIN
checked live), picks a plan, finds mechanics (an online Honda specialist in Toronto comes
first, with the reasons and a live presence badge) and picks them, describes the concern, walks back and forward with
the browser's own buttons (each step comes back as saved on the server), accepts the waiver,
adds a photo, pays with the test card and lands on the waiting page. The steps swap in place:
the page never reloads on the way forward."""
import io
import re
import uuid

import pytest
from PIL import Image
from playwright.sync_api import expect

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import ConsultSession, Intake, MechanicProfile, User
from autodoctor.services import lifecycle, presence
from tests.e2e.helpers import signup, wizard_step
from tests.factories import UserFactory

pytestmark = pytest.mark.e2e

PHONE = {"width": 360, "height": 740}
# Not "Grinding noise": the core journeys look for their own request cards by that text.
CONCERN = "Squealing belt noise on cold mornings, gone once the engine is warm."


def _png():
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(buf, format="PNG")
    return {"name": "belt.png", "mimeType": "image/png", "buffer": buf.getvalue()}


def _online_honda_specialist(live_app):
    """An online mechanic in Toronto who knows Hondas (seen just now: online for the presence window)."""
    tag = uuid.uuid4().hex[:8]
    with live_app.test_request_context():
        user = UserFactory("mechanic", f"wizard-{tag}@example.com", f"Wendy Wizard {tag}", brands="Honda",
                           specialties="noise, engine", years_experience=11)
        profile = user.mechanic_profile
        profile.online, profile.presence = True, "online"
        profile.last_seen_at = profile.presence_changed_at = clock.now()
        db.session.commit()
        return user.id, user.full_name


def _tidy_up(live_app, mechanic_id, customer_email):
    """Leave no online mechanic and no pending request behind for the journeys that follow."""
    with live_app.test_request_context():
        db.session.execute(db.update(MechanicProfile).where(MechanicProfile.user_id == mechanic_id)
                           .values(online=False, presence="offline"))
        db.session.commit()
        customer = db.session.scalar(db.select(User).where(User.email == customer_email))
        active = lifecycle.active_session_for_customer(customer.id) if customer else None
        if active is not None and active.status == "pending":
            lifecycle.cancel_by_customer(active.id, customer.id)
            db.session.commit()
        db.session.remove()


def test_a_customer_books_now_through_the_wizard_on_a_phone(live_server, live_app, browser):
    mechanic_id, mechanic_name = _online_honda_specialist(live_app)
    email = f"wizard-{uuid.uuid4().hex[:8]}@example.com"
    context = browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    page = context.new_page()
    base = live_server.url
    try:
        signup(page, base, email)
        page.evaluate("window.__sameDocument = true")  # gone if the page ever reloads

        # 1. Vehicle: a new one; the VIN is checked as it is typed.
        expect(page.locator("input[name=vehicle][value=new]")).to_be_checked()
        page.fill("input[name=year]", "2011")
        page.fill("input[name=make]", "Honda")
        page.fill("input[name=model]", "Civic")
        page.fill("input[name=vin]", "1HGCM82633A004352")
        expect(page.locator("#vin-result")).to_contain_text("Honda")
        page.click("#book-next")

        # 2. Plan.
        wizard_step(page, "plan")
        page.locator("#plan-chat10").click()
        page.click("#book-next")

        # 3. Mechanic: nothing is searched until "Find mechanics"; the location comes from the profile.
        wizard_step(page, "mechanic")
        expect(page.locator("#search-hint")).to_be_visible()
        expect(page.locator("input[name=mechanic][value=any]")).to_be_checked()
        page.fill("#search-city", "Toronto")
        page.select_option("#search-country", "CA")
        page.locator("input[name=filter][value=brand]").check()
        page.click("#find-mechanics")
        card = page.locator(f"#mechanic-{mechanic_id}")
        expect(card).to_contain_text(mechanic_name)
        expect(card).to_contain_text("brand specialist: Honda")
        expect(card).to_contain_text("online now")
        expect(card.locator(".presence")).to_have_text("Online")
        # The badge is live: the mechanic steps away and comes back while the customer looks.
        for on, label in ((False, "Offline"), (True, "Online")):
            with live_app.test_request_context():
                presence.set_online(mechanic_id, on)
                db.session.commit()
                db.session.remove()
            expect(card.locator(".presence")).to_have_text(label)
        card.click()
        expect(card.locator("input")).to_be_checked()
        page.click("#book-next")

        # 4. Concern.
        wizard_step(page, "concern")
        expect(page.locator("#book-city")).to_have_value("Toronto")
        page.fill("#book-concern", CONCERN)
        page.click("#book-next")
        wizard_step(page, "waiver")
        assert page.evaluate("window.__sameDocument") is True  # every step swapped in place

        # Back and forward with the browser's buttons: each step as saved on the server.
        page.go_back()
        wizard_step(page, "concern")
        expect(page.locator("#book-concern")).to_have_value(CONCERN)
        page.go_back()
        wizard_step(page, "mechanic")
        expect(page.locator(f"#mechanic-{mechanic_id} input")).to_be_checked()  # the saved search ran again
        page.go_back()
        wizard_step(page, "plan")
        expect(page.locator("input[name=plan][value=chat10]")).to_be_checked()
        page.go_forward()
        wizard_step(page, "mechanic")
        page.go_forward()
        wizard_step(page, "concern")
        page.go_forward()
        wizard_step(page, "waiver")

        # 5. Waiver: the text and the tick.
        expect(page.locator("#waiver-text")).to_contain_text("not a physical inspection")
        page.click("#book-next")
        expect(page.locator("#field-accept_waiver .error")).to_have_text("You must accept the waiver to continue.")
        page.check("#accept_waiver")
        page.click("#book-next")

        # 6. Pay: the summary, a photo, then the test checkout.
        wizard_step(page, "pay")
        expect(page.locator("#summary-vehicle")).to_contain_text("2011 Honda Civic")
        expect(page.locator("#summary-mechanic")).to_contain_text(mechanic_name)
        expect(page.locator("#book-pay")).to_have_text("Pay $9.99")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling
        page.set_input_files("#book-photos", _png())
        page.click("#book-pay")
        expect(page).to_have_url(re.compile(r"/customer/checkout/\d+/test$"))
        page.fill("input[name=card_number]", "4242 4242 4242 4242")
        page.click("button:has-text('Pay')")
        expect(page.locator("#session-status")).to_contain_text("Finding your mechanic")

        with live_app.app_context():
            customer = db.session.scalar(db.select(User).where(User.email == email))
            intake = db.session.scalar(db.select(Intake).where(Intake.customer_id == customer.id))
            assert intake.preferred_mechanic_id == mechanic_id
            assert intake.concern == CONCERN and [p.original_name for p in intake.photos] == ["belt.png"]
            assert intake.waiver is not None
            session = db.session.scalar(db.select(ConsultSession).where(ConsultSession.intake_id == intake.id))
            assert page.url.endswith(f"/customer/sessions/{session.id}")
            db.session.remove()
    finally:
        context.close()
        _tidy_up(live_app, mechanic_id, email)
