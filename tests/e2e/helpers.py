"""Plain helpers shared by the browser tests (fixtures live in conftest.py)."""
import re

from playwright.sync_api import expect

from tests.factories import PASSWORD

DEMO_PASSWORD = "autodoctor-demo"  # the `flask seed-demo` users (mia@, raj@, lena@autodoctor.example)
PAST_LOGIN = re.compile(r"^(?!.*/login).*$")


def log_in(page, base, email, password=PASSWORD):
    """Log in through the form and wait until the app has moved past it. Factory users by
    default; pass DEMO_PASSWORD for the demo users."""
    page.goto(base + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(PAST_LOGIN)
    return page


def open_room(context, base, email, session_id, password=PASSWORD):
    """A new page in `context`, logged in as `email`, in the session's room with its socket connected."""
    page = log_in(context.new_page(), base, email, password)
    page.goto(f"{base}/room/{session_id}")
    expect(page.locator("#connection-state")).to_have_text("Connected")
    return page


def signup(page, base, email, name="Sam Driver"):
    """A new customer for each journey, so journeys never share an active session. Signing up
    lands on the book-now wizard's first step."""
    page.goto(base + "/signup")
    page.fill("input[name=full_name]", name)
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "a-long-enough-password")
    page.fill("input[name=confirm]", "a-long-enough-password")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/customer/book/vehicle$"))


def wizard_step(page, step):
    """Wait until the book-now wizard shows `step` (its URL and its fragment)."""
    expect(page).to_have_url(re.compile(rf"/customer/book/{step}$"))
    expect(page.locator(f"#step-{step}")).to_be_visible()


def fill_intake(page, base, plan="chat10", concern="Grinding noise from the front left wheel when braking."):
    """Book now through the wizard: a new 2011 Honda Civic (VIN checked live), `plan`, any
    available mechanic, the concern in Toronto, the waiver; then "Pay", which leads to the
    test checkout (or, on the free plan, to the waiting page)."""
    page.goto(f"{base}/customer/book?plan={plan}")
    wizard_step(page, "vehicle")
    page.locator("input[name=vehicle][value=new]").check()
    page.fill("input[name=year]", "2011")
    page.fill("input[name=make]", "Honda")
    page.fill("input[name=model]", "Civic")
    page.fill("input[name=vin]", "1HGCM82633A004352")
    expect(page.locator("#vin-result")).to_contain_text("Honda")
    page.click("#book-next")
    wizard_step(page, "plan")
    page.locator(f"input[name=plan][value={plan}]").check()
    page.click("#book-next")
    wizard_step(page, "mechanic")
    page.locator("input[name=mechanic][value=any]").check()
    page.click("#book-next")
    wizard_step(page, "concern")
    page.fill("textarea[name=concern]", concern)
    page.fill("input[name=city]", "Toronto")
    page.select_option("select[name=country]", "CA")
    page.click("#book-next")
    wizard_step(page, "waiver")
    page.check("input[name=accept_waiver]")
    page.click("#book-next")
    wizard_step(page, "pay")
    page.click("#book-pay")
