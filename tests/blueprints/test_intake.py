"""The single-form intake (POST /customer/intake, multipart; kept for forms still open and for
clients posting it, while GET /customer/intake now leads to the book-now wizard, see
test_book_wizard.py): inline field errors, VIN checks, advice-only, plans, uploads checked by
content (and nothing stored when anything is wrong), the waiver record, and the free plan going
straight to the waiting page."""
import html
import io
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from autodoctor.extensions import db
from autodoctor.models import ConsultSession, Intake, Payment, StoredFile, Vehicle, Waiver
from autodoctor.services import intakes

MB = 1024 * 1024
GOOD_VIN = "1HGCM82633A004352"
VALID = {"plan": "chat10", "year": "2011", "make": "Honda", "model": "Civic", "vin": "",
         "concern": "Grinding noise from the front left wheel when braking.", "city": "Toronto",
         "country": "CA", "accept_waiver": "y"}


@pytest.fixture
def customer(login, users):
    return login(users["customer_a"])


def png_bytes(size=(32, 24), color=(200, 30, 30)):
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes():
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 200)).save(buf, format="JPEG")
    return buf.getvalue()


def submit(client, photos=(), headers=None, environ_base=None, **fields):
    data = {**VALID, **fields}
    data = {k: v for k, v in data.items() if v is not None}
    if photos:
        data["photos"] = [(io.BytesIO(content), name) for name, content in photos]
    return client.post("/customer/intake", data=data, content_type="multipart/form-data",
                       headers=headers or {}, environ_base=environ_base or {})


def field_errors(response, name):
    """The inline error messages rendered inside the form field `name`."""
    page = response.get_data(as_text=True)
    match = re.search(rf'<div class="field[^"]*" id="field-{name}">(.*?)</div>', page, re.S)
    assert match, f"field {name} not on the page"
    return [html.unescape(m) for m in re.findall(r'<p class="error" role="alert">(.*?)</p>', match.group(1), re.S)]


def upload_dir_files(app):
    root = Path(app.config["UPLOAD_DIR"])
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def assert_nothing_stored(app):
    db.session.expire_all()
    for model in (Intake, Vehicle, Waiver, StoredFile, Payment, ConsultSession):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(model)) == 0, model.__name__
    assert upload_dir_files(app) == []


def only_intake():
    db.session.expire_all()
    return db.session.scalar(sa.select(Intake))


# --- missing fields --------------------------------------------------------------------------

def test_empty_form_gives_inline_messages_and_stores_nothing(app, customer):
    response = submit(customer, year="", make="", model="", concern="", city="", country="", accept_waiver=None)
    assert response.status_code == 422
    assert "Please correct the highlighted fields." in response.get_data(as_text=True)
    [year_error] = field_errors(response, "year")
    assert year_error.startswith("Enter a year between 1950 and ")
    assert field_errors(response, "make") == ["Enter the make, e.g. Honda."]
    assert field_errors(response, "model") == ["Enter the model, e.g. Civic."]
    assert field_errors(response, "concern") == ["Describe the problem in at least 10 characters."]
    assert field_errors(response, "city") == ["Enter your city."]
    assert field_errors(response, "country") == ["Choose your country."]
    assert field_errors(response, "accept_waiver") == ["You must accept the waiver to continue."]
    assert_nothing_stored(app)


@pytest.mark.parametrize("field,value,message", [
    ("concern", "noise", "at least 10 characters"),
    ("year", "1890", "Enter a year between 1950"),
    ("accept_waiver", None, "accept the waiver"),
])
def test_one_bad_field_keeps_the_others_and_stores_nothing(app, customer, field, value, message):
    response = submit(customer, **{field: value})
    assert response.status_code == 422
    assert any(message in e for e in field_errors(response, field))
    page = response.get_data(as_text=True)
    assert 'value="Toronto"' in page  # what the customer typed is kept
    assert_nothing_stored(app)


# --- VIN -------------------------------------------------------------------------------------

@pytest.mark.parametrize("vin,message", [
    ("1HGCM82633A00435", "A VIN has 17 characters; this one has 16."),
    ("1HGCM82633A0O4352", "A VIN never contains the letters I, O or Q."),
    ("1HGCM8I633A004352", "A VIN never contains the letters I, O or Q."),
    ("1HGCM82633A004353", "check digit"),
])
def test_malformed_vin_shows_an_inline_error(app, customer, vin, message):
    response = submit(customer, vin=vin)
    assert response.status_code == 422
    errors = field_errors(response, "vin")
    assert len(errors) == 1 and message in errors[0]
    assert_nothing_stored(app)

    fragment = customer.post("/customer/intake/vin", data={"vin": vin}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    body = fragment.get_data(as_text=True)
    assert message in html.unescape(body)
    assert 'role="alert"' in body


def test_valid_vin_decodes_to_honda_and_is_stored_on_the_vehicle(app, customer):
    response = submit(customer, vin=" 1hgcm82633a004352 ")  # lower case and spaces are forgiven
    assert response.status_code == 303
    intake = only_intake()
    assert intake.vehicle.vin == GOOD_VIN
    assert "Honda" in intake.vehicle.vin_decoded
    assert (intake.vehicle.year, intake.vehicle.make, intake.vehicle.model) == (2011, "Honda", "Civic")


def test_vin_check_returns_only_the_inline_fragment(customer):
    response = customer.post("/customer/intake/vin", data={"vin": GOOD_VIN}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = response.get_data(as_text=True).strip()
    assert body.startswith('<div id="vin-result"') and body.endswith("</div>")
    assert "<html" not in body and "<form" not in body
    assert "Honda" in body and "✓" in body
    empty = customer.post("/customer/intake/vin", data={"vin": "  "}).get_data(as_text=True)
    assert 'id="vin-result"' in empty and "error" not in empty and "✓" not in empty


def test_vin_check_is_for_logged_in_customers(client):
    response = client.post("/customer/intake/vin", data={"vin": GOOD_VIN})
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_decode_vin_service():
    assert intakes.decode_vin("1HGCM82633A004352")[0] == GOOD_VIN
    assert "Honda" in intakes.decode_vin("1HGCM82633A004352")[1]


# --- advice only, plans ----------------------------------------------------------------------

def test_advice_only_needs_no_vehicle(app, customer):
    response = submit(customer, advice_only="y", year="", make="", model="", vin="",
                      concern="Is it worth buying a 2012 diesel with 200,000 km?")
    assert response.status_code == 303, field_errors(response, "year")
    intake = only_intake()
    assert intake.advice_only is True
    assert intake.vehicle_id is None
    assert db.session.scalar(sa.select(sa.func.count(Vehicle.id))) == 0


@pytest.mark.parametrize("plan", ["platinum", ""])
def test_unknown_plan_is_a_clear_error_not_a_500(app, customer, plan):
    response = submit(customer, plan=plan)
    assert response.status_code == 422
    errors = field_errors(response, "plan")
    assert errors in (["That plan does not exist. Pick one from the pricing page."], ["Choose a plan."])
    assert_nothing_stored(app)


def test_inactive_plan_is_refused(app, customer):
    from autodoctor.models import Plan

    db.session.execute(sa.update(Plan).where(Plan.code == "video15").values(active=False))
    db.session.commit()
    response = submit(customer, plan="video15")
    assert response.status_code == 422
    assert field_errors(response, "plan")
    assert_nothing_stored(app)


def test_the_intake_page_leads_to_the_wizard_keeping_the_plan(customer):
    response = customer.get("/customer/intake?plan=video15")
    assert response.status_code == 303 and response.headers["Location"] == "/customer/book?plan=video15"
    assert customer.get("/customer/intake").headers["Location"] == "/customer/book"
    page = customer.get("/customer/book/plan", follow_redirects=True)
    assert page.request.path == "/customer/book/vehicle"  # the plan step needs a vehicle first


def test_intake_page_with_unknown_plan_in_the_query_still_renders(customer):
    response = customer.get("/customer/intake?plan=platinum", follow_redirects=True)
    assert response.status_code == 200 and response.request.path == "/customer/book/vehicle"


# --- uploads ---------------------------------------------------------------------------------

ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 200
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200 + b"This program cannot be run"
TEXT = b"#!/bin/sh\necho definitely a photo\n" * 10


@pytest.mark.parametrize("name,content", [
    ("photo.jpg", ELF),
    ("photo.jpg", EXE),
    ("photo.jpg", TEXT),
    ("brochure.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"),  # not an image
], ids=["elf", "exe", "text", "pdf-not-an-image"])
def test_disguised_upload_is_rejected_and_nothing_is_stored(app, customer, name, content):
    response = submit(customer, photos=[(name, content)])
    assert response.status_code == 422
    errors = field_errors(response, "photos")
    assert len(errors) == 1
    assert f"“{name}”" in errors[0] and "not a file type we accept" in errors[0]
    assert "JPEG, PNG, WebP" in errors[0]
    assert_nothing_stored(app)


def test_empty_file_is_rejected_but_no_file_chosen_is_fine(app, customer):
    response = submit(customer, photos=[("photo.jpg", b"")])
    assert response.status_code == 422
    assert field_errors(response, "photos") == ["“photo.jpg” is empty."]
    assert_nothing_stored(app)
    # What a browser sends when no file was chosen: an empty part with no file name.
    response = submit(customer, photos=[("", b"")])
    assert response.status_code == 303
    assert db.session.scalar(sa.select(sa.func.count(StoredFile.id))) == 0
    assert upload_dir_files(app) == []


def test_corrupt_image_with_a_real_header_is_rejected(app, customer):
    broken = png_bytes()[:40]  # PNG signature and header, then nothing
    response = submit(customer, photos=[("photo.png", broken)])
    assert response.status_code == 422
    assert "cannot be read" in field_errors(response, "photos")[0]
    assert_nothing_stored(app)


def test_oversized_image_is_rejected_and_nothing_is_stored(app, customer):
    big = png_bytes()
    big += b"\x00" * (10 * MB + 1 - len(big))
    response = submit(customer, photos=[("huge.png", big)])
    assert response.status_code == 422
    error = field_errors(response, "photos")[0]
    assert "“huge.png”" in error and "limited to 10 MB" in error
    assert_nothing_stored(app)


def test_image_of_exactly_10_mb_is_accepted(app, customer):
    data = png_bytes()
    data += b"\x00" * (10 * MB - len(data))  # trailing bytes after IEND: still a readable PNG
    response = submit(customer, photos=[("big.png", data)])
    assert response.status_code == 303, field_errors(response, "photos")
    assert db.session.scalar(sa.select(StoredFile.size_bytes)) == 10 * MB


def test_request_larger_than_the_server_limit_gets_a_clear_413(app, customer):
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    response = submit(customer, photos=[("photo.png", png_bytes() + b"\x00" * (128 * 1024))])
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)
    assert_nothing_stored(app)


def test_one_bad_photo_among_good_ones_stores_none_of_them(app, customer):
    response = submit(customer, photos=[("a.png", png_bytes()), ("b.jpg", ELF), ("c.jpg", jpeg_bytes())])
    assert response.status_code == 422
    assert "“b.jpg”" in field_errors(response, "photos")[0]
    assert_nothing_stored(app)


def test_a_real_photo_is_accepted_and_stored(app, customer):
    photo = png_bytes()
    response = submit(customer, photos=[("dashboard light.png", photo), ("engine.jpg", jpeg_bytes())])
    assert response.status_code == 303
    payment = db.session.scalar(sa.select(Payment))
    assert response.headers["Location"] == f"/customer/checkout/{payment.id}/test"
    intake = only_intake()
    files = intake.photos
    assert [(f.original_name, f.mime_type, f.kind) for f in files] == [
        ("dashboard light.png", "image/png", "image"), ("engine.jpg", "image/jpeg", "image")]
    assert files[0].size_bytes == len(photo)
    assert files[0].owner_id == intake.customer_id
    on_disk = Path(app.config["UPLOAD_DIR"]) / files[0].storage_key
    assert on_disk.read_bytes() == photo
    assert len(upload_dir_files(app)) == 4  # each photo and its server-made thumbnail
    # The stored name is unguessable, never the customer's file name.
    assert "dashboard" not in files[0].storage_key and len(files[0].storage_key) >= 24


def test_a_photo_renamed_with_the_wrong_extension_is_stored_by_its_real_type(app, customer):
    response = submit(customer, photos=[("picture.gif", png_bytes())])
    assert response.status_code == 303
    assert db.session.scalar(sa.select(StoredFile.mime_type)) == "image/png"


def test_plan_photo_limit(app, customer):
    response = submit(customer, plan="quick_advice", photos=[("a.png", png_bytes()), ("b.png", png_bytes())])
    assert response.status_code == 422
    assert "up to 1 photo" in field_errors(response, "photos")[0]
    assert_nothing_stored(app)


# --- waiver, free plan -----------------------------------------------------------------------

def test_waiver_records_version_ip_and_user_agent(app, customer, users):
    agent = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 Chrome/131 Mobile Safari/537.36"
    response = submit(customer, headers={"User-Agent": agent}, environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert response.status_code == 303
    intake = only_intake()
    waiver = intake.waiver
    assert waiver.version == intakes.WAIVER_VERSION == "2026-11"
    assert waiver.ip_address == "203.0.113.7"
    assert waiver.user_agent == agent
    assert waiver.user_id == users["customer_a"].id
    assert waiver.accepted_at is not None
    assert "version 2026-11" in submit(customer, concern="").get_data(as_text=True)  # the form shown again


def test_free_plan_skips_payment_and_goes_to_the_waiting_page(app, customer):
    response = submit(customer, plan="free")
    assert response.status_code == 303
    session = db.session.scalar(sa.select(ConsultSession))
    assert response.headers["Location"] == f"/customer/sessions/{session.id}"
    assert session.status == "pending" and session.minutes == 5
    payment = db.session.scalar(sa.select(Payment))
    assert (payment.amount_cents, payment.status, payment.provider) == (0, "paid", "free")
    page = customer.get(response.headers["Location"])
    assert page.status_code == 200
    assert "Finding your mechanic" in page.get_data(as_text=True)


def test_paid_plan_goes_to_checkout_not_to_a_session(app, customer):
    response = submit(customer, plan="diagnostic")
    assert response.status_code == 303
    assert "/checkout/" in response.headers["Location"]
    assert db.session.scalar(sa.select(sa.func.count(ConsultSession.id))) == 0
    payment = db.session.scalar(sa.select(Payment))
    assert (payment.amount_cents, payment.status) == (4999, "open")


def test_intake_is_for_customers_only(login, users):
    mechanic = login(users["mechanic_a"])
    response = submit(mechanic)
    assert response.status_code == 403
    assert db.session.scalar(sa.select(sa.func.count(Intake.id))) == 0


def test_photos_are_removed_when_the_checkout_cannot_start(app, customer, monkeypatch):
    """A late refusal (here: an active session created in another tab meanwhile) rolls the
    intake back, and the photo already written to storage goes with it."""
    from autodoctor.services import payments
    from autodoctor.services.errors import Conflict

    def refuse(*args, **kwargs):
        raise Conflict("You already have an active session. Finish or cancel it before starting another.")

    monkeypatch.setattr(payments, "start_checkout", refuse)
    response = submit(customer, photos=[("brake.png", png_bytes())])
    assert response.status_code == 422
    assert "You already have an active session" in response.get_data(as_text=True)
    assert_nothing_stored(app)
