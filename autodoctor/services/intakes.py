"""Intake: vehicle (or advice only), concern, location, photos, waiver acceptance."""
from vininfo import Vin
from vininfo.exceptions import ValidationError as VinError

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import Intake, Vehicle, Waiver
from autodoctor.services import uploads
from autodoctor.services.errors import ValidationError

WAIVER_VERSION = "2026-11"
NORTH_AMERICA = "12345"  # WMI first characters that carry a mandatory check digit


def decode_vin(raw):
    """Validate a VIN (structure, and the check digit for North American VINs) and return
    (normalized vin, a short description). Raises ValidationError."""
    vin = (raw or "").strip().upper().replace(" ", "")
    if len(vin) != 17:
        raise ValidationError(f"A VIN has 17 characters; this one has {len(vin)}.", field="vin")
    if any(ch in "IOQ" for ch in vin):
        raise ValidationError("A VIN never contains the letters I, O or Q.", field="vin")
    try:
        decoded = Vin(vin)
    except VinError as exc:
        raise ValidationError(f"That VIN is not valid: {exc}.", field="vin") from None
    if vin[0] in NORTH_AMERICA and not decoded.verify_checksum():
        raise ValidationError("That VIN's check digit (9th character) does not match; please check for typos.",
                              field="vin")
    parts = [str(decoded.manufacturer or ""), "/".join(str(y) for y in (decoded.years or [])[-2:]),
             str(decoded.country or "")]
    return vin, " · ".join(p for p in parts if p)


def create_intake(customer, plan, data, photos, waiver):
    """Validate and store an intake. `photos` are (name, bytes); `waiver` has ip and user_agent."""
    errors = {}
    vehicle = None
    if not data.get("advice_only"):
        year, make, model = data.get("year"), (data.get("make") or "").strip(), (data.get("model") or "").strip()
        if not year or not (1950 <= year <= clock.now().year + 1):
            errors["year"] = f"Enter a year between 1950 and {clock.now().year + 1}."
        if not make:
            errors["make"] = "Enter the make, e.g. Honda."
        if not model:
            errors["model"] = "Enter the model, e.g. Civic."
        vin = decoded = None
        if data.get("vin"):
            try:
                vin, decoded = decode_vin(data["vin"])
            except ValidationError as exc:
                errors["vin"] = exc.message
        if not errors:
            vehicle = Vehicle(owner_id=customer.id, year=year, make=make, model=model, vin=vin, vin_decoded=decoded)
    concern = (data.get("concern") or "").strip()
    if len(concern) < 10:
        errors["concern"] = "Describe the problem in at least 10 characters."
    elif len(concern) > 4000:
        errors["concern"] = "Keep the description under 4,000 characters."
    city, country = (data.get("city") or "").strip(), (data.get("country") or "").strip().upper()
    if not city:
        errors["city"] = "Enter your city."
    if len(country) != 2 or not country.isalpha():
        errors["country"] = "Choose your country."
    if not data.get("accept_waiver"):
        errors["accept_waiver"] = "You must accept the waiver to continue."
    photos = [p for p in photos if p[0] or p[1]]
    if len(photos) > plan.max_photos:
        errors["photos"] = f"The {plan.name} plan takes up to {plan.max_photos} photo{'s' if plan.max_photos > 1 else ''}."
    checked = []
    if "photos" not in errors:
        for name, content in photos:
            try:
                checked.append(uploads.check(name, content, kinds=("image",)))
            except ValidationError as exc:
                errors["photos"] = exc.message
                break
    if errors:
        raise IntakeErrors(errors)
    if vehicle:
        db.session.add(vehicle)
    intake = Intake(customer=customer, vehicle=vehicle, plan=plan, concern=concern, city=city, country=country,
                    advice_only=bool(data.get("advice_only")))
    db.session.add(intake)
    db.session.flush()
    db.session.add(Waiver(user_id=customer.id, intake_id=intake.id, version=WAIVER_VERSION,
                          accepted_at=clock.now(), ip_address=(waiver.get("ip") or "unknown")[:45],
                          user_agent=(waiver.get("user_agent") or "unknown")[:400]))
    for upload in checked:
        uploads.store(upload, customer.id, intake_id=intake.id)
    db.session.flush()
    return intake


class IntakeErrors(ValidationError):
    def __init__(self, errors):
        super().__init__("Please correct the highlighted fields.")
        self.errors = errors
