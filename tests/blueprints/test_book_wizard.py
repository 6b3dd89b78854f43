"""The book-now wizard (/customer/book): each step and its messages, the draft kept on the
server (back and forward are plain step URLs; another browser resumes it), steps asked for
too early, the mechanic search (filters, favorites, brand specialists, presence, nobody
online), and "Pay": the intake with its waiver, photos and preferred mechanic, then the
checkout (or, on the free plan, the session at once)."""
import html
import io
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from PIL import Image

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import (
    BookingDraft,
    ConsultSession,
    Favorite,
    Intake,
    Payment,
    StoredFile,
    Vehicle,
    WaitlistEntry,
    Waiver,
)
from autodoctor.services import booking, intakes, money
from tests.factories import IntakeFactory, PaidSessionFactory, UserFactory
from tests.services.test_credit import give_credit

HX = {"HX-Request": "true"}
GOOD_VIN = "1HGCM82633A004352"
NEW_CAR = {"vehicle": "new", "year": "2011", "make": "Honda", "model": "Civic", "vin": ""}
CONCERN = {"concern": "Grinding noise from the front left wheel when braking.", "city": "Toronto", "country": "CA"}


@pytest.fixture
def customer(login, users):
    return login(users["customer_a"])


def png_bytes():
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def set_presence(user, state):
    """Mark a mechanic online or offline as services.presence would (toggle, beat, column)."""
    profile = user.mechanic_profile
    profile.online = state == "online"
    profile.presence = state
    profile.last_seen_at = profile.presence_changed_at = clock.now()
    db.session.commit()


def mechanic(name, state="online", **profile):
    user = UserFactory("mechanic", full_name=name, **profile)
    db.session.commit()
    set_presence(user, state)
    return user


def fill(client, until, plan="chat10", vehicle=None, choice="any", concern=None):
    """Answer every step before `until` (as plain form posts)."""
    answers = {"vehicle": vehicle or NEW_CAR, "plan": {"plan": plan}, "mechanic": {"action": "next", "mechanic": choice},
               "concern": concern or CONCERN, "waiver": {"accept_waiver": "y"}}
    for step in booking.STEPS[:booking.STEPS.index(until)]:
        response = client.post(f"/customer/book/{step}", data=answers[step])
        assert response.status_code == 303, (step, response.get_data(as_text=True)[-2000:])
    return response


def page(response):
    return response.get_data(as_text=True)


def errors_in(response, name):
    """The inline messages inside the field (or fieldset) with id field-<name>."""
    text = page(response)
    match = re.search(rf'id="field-{name}">(.*?)</(?:div|fieldset)>', text, re.S)
    assert match, f"field {name} not on the page"
    return [html.unescape(m) for m in re.findall(r'<p class="error" role="alert">(.*?)</p>', match.group(1), re.S)]


def draft_data(user):
    db.session.expire_all()
    draft = db.session.scalar(sa.select(BookingDraft).where(BookingDraft.customer_id == user.id))
    return draft.data if draft else None


def only_intake():
    db.session.expire_all()
    return db.session.scalar(sa.select(Intake))


# --- entry, resuming, prerequisites ----------------------------------------------------------

def test_book_now_starts_at_the_vehicle_step_with_a_draft(customer, users):
    response = customer.get("/customer/book")
    assert response.status_code == 303 and response.headers["Location"] == "/customer/book/vehicle"
    assert draft_data(users["customer_a"]) == {}
    text = page(customer.get("/customer/book/vehicle"))
    assert "Step 1 of 6: Vehicle" in text and 'id="vehicle-form"' in text
    assert 'hx-history="false"' in text  # back/forward ask the server, never a stale copy
    assert 'name="vehicle" value="new" checked' in text  # no saved vehicles: "add one" is preselected
    assert 'href="/customer/" id="book-back"' in text


def test_get_help_links_lead_to_the_wizard(customer, client):
    assert 'href="/customer/book">Get help</a>' in page(customer.get("/customer/"))
    assert 'class="button big" href="/customer/book">Get help now</a>' in page(customer.get("/customer/"))
    assert 'href="/customer/book?plan=video15"' in page(client.get("/pricing"))


def test_a_plan_from_the_pricing_page_is_preselected(customer, users):
    assert customer.get("/customer/intake?plan=video15").headers["Location"] == "/customer/book?plan=video15"
    response = customer.get("/customer/book?plan=video15")
    assert response.headers["Location"] == "/customer/book/vehicle"
    assert draft_data(users["customer_a"])["plan"] == "video15"
    customer.post("/customer/book/vehicle", data=NEW_CAR)
    assert 'name="plan" value="video15" checked' in page(customer.get("/customer/book/plan"))
    customer.get("/customer/book?plan=platinum")  # unknown: ignored
    assert draft_data(users["customer_a"])["plan"] == "video15"


@pytest.mark.parametrize("step", ["plan", "mechanic", "concern", "waiver", "pay"])
def test_a_step_without_its_prerequisites_goes_to_the_first_missing_one(customer, step):
    response = customer.get(f"/customer/book/{step}")
    assert response.status_code == 303 and response.headers["Location"] == "/customer/book/vehicle"
    response = customer.post(f"/customer/book/{step}", data={"plan": "chat10", "accept_waiver": "y"})
    assert response.status_code == 303 and response.headers["Location"] == "/customer/book/vehicle"
    # HTMX: the missing step's fragment, its URL pushed.
    response = customer.get(f"/customer/book/{step}", headers=HX)
    assert response.status_code == 200 and response.headers["HX-Push-Url"] == "/customer/book/vehicle"
    assert "<html" not in page(response) and 'id="step-vehicle"' in page(response)


def test_a_later_gap_is_found_too(customer, users):
    fill(customer, "waiver")
    draft = db.session.scalar(sa.select(BookingDraft))
    draft.data = {k: v for k, v in draft.data.items() if k != "plan"}
    db.session.commit()
    assert customer.get("/customer/book/pay").headers["Location"] == "/customer/book/plan"
    assert booking.resume_url(users["customer_a"].id) == "/customer/book/plan"


def test_unknown_step_is_404(customer):
    assert customer.get("/customer/book/dessert").status_code == 404
    assert customer.post("/customer/book/dessert").status_code == 404


def test_the_draft_is_kept_on_the_server_and_resumed_elsewhere(app, login, users):
    first = login(users["customer_a"])
    fill(first, "concern")
    second = login(users["customer_a"])  # another browser: no shared cookie but the log-in
    assert second.get("/customer/book").headers["Location"] == "/customer/book/concern"
    assert booking.resume_url(users["customer_a"].id) == "/customer/book/concern"
    assert booking.resume_url(users["customer_a"].id, _external=True) == "http://localhost/customer/book/concern"
    assert booking.resume_url(users["customer_b"].id) == "/customer/book/vehicle"  # no draft yet
    # Going back to an earlier step and forward again keeps the answers and the furthest step.
    text = page(second.get("/customer/book/vehicle"))
    assert 'name="vehicle" value="new" checked' in text and 'name="make" value="Honda"' in text
    assert 'name="plan" value="chat10" checked' in page(second.get("/customer/book/plan"))
    assert second.get("/customer/book").headers["Location"] == "/customer/book/concern"


def test_steps_swap_as_fragments_and_push_their_url(customer):
    response = customer.post("/customer/book/vehicle", data=NEW_CAR, headers=HX)
    assert response.status_code == 200 and response.headers["HX-Push-Url"] == "/customer/book/plan"
    assert "<html" not in page(response) and "Step 2 of 6: Plan" in page(response)
    back = customer.get("/customer/book/vehicle", headers=HX)  # the "Back" link
    assert back.headers["HX-Push-Url"] == "/customer/book/vehicle" and "<html" not in page(back)
    assert re.search(r'<a href="/customer/book/vehicle" id="book-back" hx-get="/customer/book/vehicle"',
                     page(customer.get("/customer/book/plan")))
    # A full load of a step URL (a reload, or back/forward without htmx's cache) is the whole page.
    full = customer.get("/customer/book/plan", headers={**HX, "HX-History-Restore-Request": "true"})
    assert "<html" in page(full) and "Step 2 of 6: Plan" in page(full)
    # An answer with errors does not move the URL.
    wrong = customer.post("/customer/book/plan", data={}, headers=HX)
    assert wrong.status_code == 422 and "HX-Push-Url" not in wrong.headers


def test_an_active_session_is_named_instead_of_the_steps(app, login, users):
    session = PaidSessionFactory(users["customer_a"])
    db.session.commit()
    client = login(users["customer_a"])
    response = client.get("/customer/book/vehicle")
    assert response.status_code == 200
    assert "You already have an active session" in page(response)
    assert f'href="/customer/sessions/{session.id}"' in page(response)
    assert 'id="vehicle-form"' not in page(response)
    refused = client.post("/customer/book/vehicle", data=NEW_CAR)
    assert refused.status_code == 409 and "You already have an active session" in page(refused)


def test_a_paid_booking_starts_the_draft_over(app, customer, users):
    fill(customer, "pay")
    assert customer.post("/customer/book/pay").status_code == 303
    payment = db.session.scalar(sa.select(Payment))
    assert draft_data(users["customer_a"])["intake_id"] == payment.intake_id
    # Cancelled at the checkout: the draft is still there.
    assert customer.get("/customer/book").headers["Location"] == "/customer/book/pay"
    customer.post(f"/customer/checkout/{payment.id}/test", data={"card_number": "4242 4242 4242 4242"})
    session = db.session.scalar(sa.select(ConsultSession))
    session.status = "completed"
    db.session.commit()
    assert customer.get("/customer/book").headers["Location"] == "/customer/book/vehicle"
    assert draft_data(users["customer_a"]) == {}


def test_an_old_draft_starts_over(customer, users):
    fill(customer, "concern")
    draft = db.session.scalar(sa.select(BookingDraft))
    draft.updated_at = clock.now() - booking.DRAFT_TTL - timedelta(minutes=1)
    db.session.commit()
    assert customer.get("/customer/book").headers["Location"] == "/customer/book/vehicle"
    assert draft_data(users["customer_a"]) == {}


# --- vehicle ---------------------------------------------------------------------------------

def test_vehicle_step_messages(customer):
    response = customer.post("/customer/book/vehicle", data={})
    assert response.status_code == 422
    assert errors_in(response, "vehicle") == ["Choose a vehicle, add one, or choose “Just advice”."]
    response = customer.post("/customer/book/vehicle", data={"vehicle": "new", "year": "", "make": "", "model": ""})
    assert response.status_code == 422
    assert errors_in(response, "year")[0].startswith("Enter a year between 1950 and ")
    assert errors_in(response, "make") == ["Enter the make, e.g. Honda."]
    assert errors_in(response, "model") == ["Enter the model, e.g. Civic."]
    assert "Please correct the highlighted fields." in page(response)
    response = customer.post("/customer/book/vehicle", data={**NEW_CAR, "year": "19999", "vin": "1HGCM82633A004353"})
    assert "check digit" in errors_in(response, "vin")[0]
    assert 'name="make" value="Honda"' in page(response)  # what was typed is kept
    assert draft_data(booking_user(customer)) == {}


def booking_user(client):
    from autodoctor.models import User

    return db.session.scalar(sa.select(User).where(User.email == "a@example.com"))


def test_a_new_vehicle_is_kept_with_its_checked_vin(customer, users):
    response = customer.post("/customer/book/vehicle", data={**NEW_CAR, "vin": " 1hgcm82633a004352 "})
    assert response.headers["Location"] == "/customer/book/plan"
    data = draft_data(users["customer_a"])
    assert data["vehicle"] == "new" and data["reached"] == "plan"
    assert data["new_vehicle"]["vin"] == GOOD_VIN and "Honda" in data["new_vehicle"]["vin_decoded"]
    assert data["new_vehicle"]["year"] == 2011
    assert db.session.scalar(sa.select(sa.func.count(Vehicle.id))) == 0  # stored only with the intake


def test_saved_vehicles_and_just_advice(customer, users):
    saved = IntakeFactory(users["customer_a"]).vehicle
    theirs = IntakeFactory(users["customer_b"]).vehicle
    db.session.commit()
    text = page(customer.get("/customer/book/vehicle"))
    assert f'id="vehicle-{saved.id}"' in text and "2015 Honda Civic" in text
    assert f'id="vehicle-{theirs.id}"' not in text
    assert customer.post("/customer/book/vehicle", data={"vehicle": str(theirs.id)}).status_code == 422
    assert customer.post("/customer/book/vehicle", data={"vehicle": str(saved.id)}).status_code == 303
    assert draft_data(users["customer_a"])["vehicle"] == str(saved.id)
    assert customer.post("/customer/book/vehicle", data={"vehicle": "none"}).status_code == 303
    assert draft_data(users["customer_a"])["vehicle"] == "none"


def test_the_vin_is_checked_live(customer):
    text = page(customer.get("/customer/book/vehicle"))
    assert 'hx-post="/customer/intake/vin"' in text and 'id="vin-result"' in text
    fragment = customer.post("/customer/intake/vin", data={"vin": GOOD_VIN}, headers=HX)
    assert "Honda" in page(fragment)


# --- plan ------------------------------------------------------------------------------------

def test_plan_step_lists_every_plan_and_checks_the_choice(customer, users):
    fill(customer, "plan")
    text = page(customer.get("/customer/book/plan"))
    for code in ("free", "quick_advice", "chat10", "video15", "diagnostic"):
        assert f'name="plan" value="{code}"' in text
    response = customer.post("/customer/book/plan", data={})
    assert response.status_code == 422 and errors_in(response, "plan") == ["Choose a plan."]
    response = customer.post("/customer/book/plan", data={"plan": "platinum"})
    assert errors_in(response, "plan") == ["That plan does not exist. Pick one from the pricing page."]
    assert customer.post("/customer/book/plan", data={"plan": "video15"}).headers["Location"] == \
        "/customer/book/mechanic"
    assert draft_data(users["customer_a"])["plan"] == "video15"


# --- mechanic --------------------------------------------------------------------------------

@pytest.fixture
def crew(app):
    """Three online mechanics and an offline one, with different strengths."""
    return {
        "honda": mechanic("Hana Honda", brands="Honda, Acura", specialties="brakes, suspension", years_experience=12),
        "toyota": mechanic("Toby Toyota", brands="Toyota", specialties="transmission", years_experience=3),
        "vancouver": mechanic("Val Vancouver", brands="Honda", specialties="engine"),
        "offline": mechanic("Otto Offline", "offline", brands="Honda", specialties="brakes", years_experience=20),
    }


def _vancouver(crew):
    user = crew["vancouver"]
    user.city = "Vancouver"
    db.session.commit()


def results(response):
    """(mechanic id, pickable) for each result, in order."""
    return [(int(mid), "disabled" not in attrs) for mid, attrs in
            re.findall(r'<input type="radio" name="mechanic" value="(\d+)"([^>]*)>', page(response))]


def test_the_search_runs_only_when_asked(customer, crew):
    fill(customer, "mechanic")
    text = page(customer.get("/customer/book/mechanic"))
    assert 'id="find-mechanics"' in text and 'id="search-hint"' in text
    assert 'id="search-city" name="city" value="Toronto"' in text  # from the profile
    assert '<option value="CA" selected>' in text
    assert 'name="mechanic" value="any" checked' in text and results(customer.get("/customer/book/mechanic")) == []
    assert 'id="nobody-online"' not in text


def test_find_mechanics_ranks_with_reasons_and_greys_out_the_offline(customer, crew, users):
    _vancouver(crew)
    fill(customer, "mechanic")
    response = customer.post("/customer/book/mechanic", data={"action": "find", "city": "Toronto", "country": "CA",
                                                              "filter": "all"}, headers=HX)
    assert response.status_code == 200 and response.headers["HX-Replace-Url"] == "/customer/book/mechanic"
    found = results(response)
    ids = [mid for mid, _ in found]
    assert ids[0] == crew["honda"].id  # online + brand + Toronto + 12 years
    online = {crew[name].id for name in ("honda", "toyota", "vancouver")}
    assert all(pickable == (mid in online) for mid, pickable in found)  # the offline: listed, not pickable
    assert crew["offline"].id in ids
    text = page(response)
    block = re.search(rf'id="mechanic-{crew["honda"].id}">(.*?)</label>', text, re.S).group(1)
    assert "brand specialist: Honda <b>+30</b>" in block and "same city: Toronto <b>+35</b>" in block
    assert "online now <b>+50</b>" in block and "Match score" in block
    assert f'id="presence-{crew["honda"].id}"' in block  # the live badge
    offline = re.search(rf'id="mechanic-{crew["offline"].id}">(.*?)</label>', text, re.S).group(1)
    assert "Offline — can't be picked" in offline
    assert draft_data(users["customer_a"])["search"] == {"city": "Toronto", "country": "CA", "filter": "all"}
    # Coming back to the step runs the saved search again.
    assert [mid for mid, _ in results(customer.get("/customer/book/mechanic"))] == ids


def test_brand_specialist_filter(customer, crew):
    fill(customer, "mechanic")
    response = customer.post("/customer/book/mechanic", data={"action": "find", "city": "Toronto", "country": "CA",
                                                              "filter": "brand"})
    assert {mid for mid, _ in results(response)} == {crew["honda"].id, crew["vancouver"].id, crew["offline"].id}
    assert "Honda specialists" in page(response)


def test_brand_filter_needs_a_vehicle(customer, crew):
    fill(customer, "mechanic", vehicle={"vehicle": "none"})
    text = page(customer.get("/customer/book/mechanic"))
    assert re.search(r'name="filter" value="brand"[^>]*disabled', text)
    response = customer.post("/customer/book/mechanic", data={"action": "find", "filter": "brand", "country": "CA"})
    assert results(response) == []


def test_favorites_filter(customer, crew, users):
    db.session.add(Favorite(customer_id=users["customer_a"].id, mechanic_id=crew["toyota"].id))
    db.session.add(Favorite(customer_id=users["customer_b"].id, mechanic_id=crew["honda"].id))
    db.session.commit()
    fill(customer, "mechanic")
    response = customer.post("/customer/book/mechanic", data={"action": "find", "city": "Toronto", "country": "CA",
                                                              "filter": "favorites"})
    assert results(response) == [(crew["toyota"].id, True)]


def test_no_favorites_yet(customer, crew):
    fill(customer, "mechanic")
    response = customer.post("/customer/book/mechanic", data={"action": "find", "filter": "favorites",
                                                              "city": "Toronto", "country": "CA"})
    assert results(response) == [] and "You have no favorite mechanics yet." in page(response)


def test_bad_search_input_is_cleaned_not_an_error(customer, crew, users):
    fill(customer, "mechanic")
    response = customer.post("/customer/book/mechanic", data={"action": "find", "city": "x" * 500,
                                                              "country": "Narnia", "filter": "everyone"})
    assert response.status_code == 200
    assert draft_data(users["customer_a"])["search"] == {"city": "x" * 80, "country": "", "filter": "all"}


def test_an_online_mechanic_can_be_picked_an_offline_one_cannot(customer, crew, users):
    fill(customer, "mechanic")
    response = customer.post("/customer/book/mechanic", data={"action": "next", "mechanic": str(crew["offline"].id)})
    assert response.status_code == 422
    assert errors_in(response, "mechanic") == [
        "Otto Offline is not online right now. Choose an online mechanic, or “Any available mechanic”."]
    for bad in ("", "12345", str(users["customer_b"].id)):
        response = customer.post("/customer/book/mechanic", data={"action": "next", "mechanic": bad})
        assert errors_in(response, "mechanic") == ["Choose a mechanic, or “Any available mechanic”."]
    customer.post("/customer/book/mechanic", data={"action": "find", "city": "Leeds", "country": "GB"})
    response = customer.post("/customer/book/mechanic", data={"action": "next", "mechanic": "999999"})
    assert 'id="search-city" name="city" value="Leeds"' in page(response)  # the search is kept
    response = customer.post("/customer/book/mechanic", data={"action": "next", "mechanic": str(crew["honda"].id)})
    assert response.headers["Location"] == "/customer/book/concern"
    assert draft_data(users["customer_a"])["mechanic"] == str(crew["honda"].id)


def test_nobody_online_offers_three_clear_options(customer, users):
    mechanic("Sleepy Sam", "offline", brands="Honda")
    fill(customer, "concern", plan="video15")  # a concern saved too, then back to the mechanic step
    customer.post("/customer/book/concern", data=CONCERN)
    text = page(customer.get("/customer/book/mechanic"))
    block = re.search(r'id="nobody-online">(.*?)</section>', text, re.S).group(1)
    assert "No mechanic is online right now" in block
    draft = db.session.scalar(sa.select(BookingDraft))
    assert re.search(r'<form method="post" action="/customer/waitlist"', block)
    assert f'name="draft_id" value="{draft.id}"' in block and ">Join the waitlist</button>" in block
    assert 'href="/mechanics" id="browse-mechanics">Browse mechanics</a>' in block
    link = html.unescape(re.search(r'href="([^"]*)" id="schedule-instead"', block).group(1))
    assert urlsplit(link).path == "/customer/schedule"
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert query == {"from": "intake", "vehicle": "new", "year": "2011", "make": "Honda", "model": "Civic",
                     "plan": "video15", "concern": CONCERN["concern"], "city": "Toronto", "country": "CA"}
    # The scheduling page takes them.
    scheduled = page(customer.get(link))
    assert "We kept what you entered." in scheduled and CONCERN["concern"] in scheduled
    # Searching shows no results, only the options; "any available mechanic" still continues.
    response = customer.post("/customer/book/mechanic", data={"action": "find", "country": "CA", "filter": "all"})
    assert 'id="nobody-online"' in page(response) and results(response) == []
    assert customer.post("/customer/book/mechanic", data={"action": "next", "mechanic": "any"}).status_code == 303
    # "Join the waitlist" keeps the draft with the entry (its link resumes the booking).
    joined = customer.post("/customer/waitlist", data={"draft_id": str(draft.id)})
    assert joined.status_code == 303
    entry = db.session.scalar(sa.select(WaitlistEntry))
    assert (entry.customer_id, entry.draft_id, entry.status) == (users["customer_a"].id, draft.id, "waiting")


# --- concern, waiver -------------------------------------------------------------------------

def test_concern_step_prefills_the_place_and_checks_the_text(customer, users):
    fill(customer, "concern")
    text = page(customer.get("/customer/book/concern"))
    assert 'id="book-city" name="city" value="Toronto"' in text and '<option value="CA" selected>' in text
    response = customer.post("/customer/book/concern", data={"concern": "noise", "city": "", "country": "ZZZ"})
    assert response.status_code == 422
    assert errors_in(response, "concern") == ["Describe the problem in at least 10 characters."]
    assert errors_in(response, "city") == ["Enter your city."]
    assert errors_in(response, "country") == ["Choose your country."]
    assert ">noise</textarea>" in page(response)
    response = customer.post("/customer/book/concern", data={**CONCERN, "concern": "x" * 4001})
    assert errors_in(response, "concern") == ["Keep the description under 4,000 characters."]
    assert customer.post("/customer/book/concern", data={**CONCERN, "city": " Leeds ", "country": "gb"}).status_code \
        == 303
    data = draft_data(users["customer_a"])
    assert (data["concern"], data["city"], data["country"]) == (CONCERN["concern"], "Leeds", "GB")


def test_the_concern_step_starts_from_the_mechanic_search_place(customer, crew):
    fill(customer, "mechanic")
    customer.post("/customer/book/mechanic", data={"action": "find", "city": "Leeds", "country": "GB"})
    customer.post("/customer/book/mechanic", data={"action": "next", "mechanic": "any"})
    text = page(customer.get("/customer/book/concern"))
    assert 'name="city" value="Leeds"' in text and '<option value="GB" selected>' in text


def test_waiver_step_shows_the_text_and_needs_the_tick(customer, users):
    fill(customer, "waiver")
    text = page(customer.get("/customer/book/waiver"))
    assert "It is not a physical inspection" in " ".join(text.split())
    assert "version 2026-11" in text
    response = customer.post("/customer/book/waiver", data={})
    assert response.status_code == 422
    assert errors_in(response, "accept_waiver") == ["You must accept the waiver to continue."]
    response = customer.post("/customer/book/waiver", data={"accept_waiver": "y"},
                             headers={"User-Agent": "Phone/1.0"}, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert response.headers["Location"] == "/customer/book/pay"
    waiver = draft_data(users["customer_a"])["waiver"]
    assert (waiver["ip"], waiver["user_agent"], waiver["version"]) == ("203.0.113.9", "Phone/1.0", "2026-11")


# --- pay -------------------------------------------------------------------------------------

def test_pay_step_summary_and_price_with_account_credit(customer, users):
    fill(customer, "pay", plan="video15")
    text = page(customer.get("/customer/book/pay"))
    assert "2011 Honda Civic" in text and "Standard Video" in text and "Any available mechanic" in text
    assert "$29.99" in text and 'id="book-credit"' not in text and ">Pay $29.99</button>" in text
    assert "up to 5 photos" in text
    give_credit(users["customer_a"], 1000)
    text = page(customer.get("/customer/book/pay"))
    assert "Account credit −$10.00" in text and ">Pay $19.99</button>" in text


def test_credit_covering_the_price_books_without_a_card(customer, users):
    give_credit(users["customer_a"], 5000)
    fill(customer, "pay", plan="video15")
    text = page(customer.get("/customer/book/pay"))
    assert "Account credit −$29.99" in text and ">Book — paid from account credit</button>" in text
    response = customer.post("/customer/book/pay")
    session = db.session.scalar(sa.select(ConsultSession))
    assert response.headers["Location"] == f"/customer/sessions/{session.id}"
    assert money.credit_balance(users["customer_a"].id) == 5000 - 2999


def test_pay_makes_the_intake_and_goes_to_checkout(app, customer, users):
    fill(customer, "pay")
    response = customer.post("/customer/book/pay", data={"photos": [(io.BytesIO(png_bytes()), "wheel.png")]},
                             content_type="multipart/form-data")
    assert response.status_code == 303
    payment = db.session.scalar(sa.select(Payment))
    assert response.headers["Location"] == f"/customer/checkout/{payment.id}/test"
    intake = only_intake()
    assert (intake.concern, intake.city, intake.country) == (CONCERN["concern"], "Toronto", "CA")
    assert str(intake.vehicle) == "2011 Honda Civic" and intake.plan.code == "chat10"
    assert intake.preferred_mechanic_id is None
    assert [p.original_name for p in intake.photos] == ["wheel.png"]
    assert intake.waiver.version == intakes.WAIVER_VERSION and intake.waiver.ip_address == "127.0.0.1"
    assert (payment.amount_cents, payment.status) == (999, "open")
    # The test card pays; the customer lands on the waiting page.
    paid = customer.post(f"/customer/checkout/{payment.id}/test", data={"card_number": "4242 4242 4242 4242"},
                         follow_redirects=True)
    assert "Finding your mechanic" in page(paid)


def test_pay_over_htmx_redirects_the_page(customer):
    fill(customer, "pay")
    response = customer.post("/customer/book/pay", headers=HX)
    assert response.status_code == 204 and re.fullmatch(r"/customer/checkout/\d+/test", response.headers["HX-Redirect"])


def test_the_picked_mechanic_is_stored_on_the_intake(customer, crew):
    fill(customer, "pay", choice=str(crew["honda"].id))
    assert "Hana Honda" in page(customer.get("/customer/book/pay"))
    assert customer.post("/customer/book/pay").status_code == 303
    assert only_intake().preferred_mechanic_id == crew["honda"].id


def test_a_picked_mechanic_who_went_offline_is_not_booked(app, customer, crew):
    fill(customer, "pay", choice=str(crew["honda"].id))
    set_presence(crew["honda"], "offline")
    response = customer.post("/customer/book/pay", headers=HX)
    assert response.status_code == 422 and response.headers["HX-Push-Url"] == "/customer/book/mechanic"
    assert 'id="step-mechanic"' in page(response)  # back to the choice, saying why
    assert errors_in(response, "mechanic") == [
        "Hana Honda is no longer online. Choose another mechanic, or “Any available mechanic”."]
    assert only_intake() is None and db.session.scalar(sa.select(sa.func.count(Payment.id))) == 0


def test_photo_errors_store_nothing(app, customer):
    fill(customer, "pay", plan="quick_advice")
    response = customer.post("/customer/book/pay", data={"photos": [(io.BytesIO(png_bytes()), "a.png"),
                                                                    (io.BytesIO(png_bytes()), "b.png")]},
                             content_type="multipart/form-data")
    assert response.status_code == 422
    assert "up to 1 photo" in errors_in(response, "photos")[0]
    response = customer.post("/customer/book/pay", data={"photos": [(io.BytesIO(b"#!/bin/sh\n" * 20), "x.jpg")]},
                             content_type="multipart/form-data")
    assert "not a file type we accept" in errors_in(response, "photos")[0]
    db.session.expire_all()
    for model in (Intake, Vehicle, Waiver, StoredFile, Payment):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(model)) == 0, model.__name__


def test_free_plan_opens_the_session_at_once(customer, users):
    fill(customer, "pay", plan="free")
    assert ">Start my free session</button>" in page(customer.get("/customer/book/pay"))
    response = customer.post("/customer/book/pay")
    session = db.session.scalar(sa.select(ConsultSession))
    assert response.status_code == 303 and response.headers["Location"] == f"/customer/sessions/{session.id}"
    assert session.status == "pending"
    assert draft_data(users["customer_a"]) == {}  # booked: the next booking starts afresh
    assert "You already have an active session" in page(customer.get("/customer/book/vehicle"))


def test_a_vehicle_removed_meanwhile_sends_the_customer_back(customer, users):
    saved = IntakeFactory(users["customer_a"]).vehicle
    db.session.commit()
    fill(customer, "pay", vehicle={"vehicle": str(saved.id)})
    db.session.execute(sa.update(Intake).values(vehicle_id=None))
    db.session.delete(saved)
    db.session.commit()
    assert customer.post("/customer/book/pay").headers["Location"] == "/customer/book/vehicle"
