"""Intake: vehicle (or advice only), concern, location, photos, waiver acceptance (now for help
right away; on the day for a scheduled appointment)."""
from dataclasses import dataclass, field

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


@dataclass
class IntakeDraft:
    """A checked intake not yet stored: plain values, so it can be saved again after a rollback
    (a scheduled time taken meanwhile, then the next mechanic tried)."""

    concern: str
    city: str
    country: str
    advice_only: bool
    vehicle_id: int | None = None  # one of the customer's saved vehicles
    new_vehicle: dict | None = None  # year, make, model, vin, vin_decoded
    photos: list = field(default_factory=list)  # CheckedUpload, stored by store_photos

    @property
    def vehicle_label(self):
        if self.advice_only:
            return None
        if self.new_vehicle:
            return f"{self.new_vehicle['year']} {self.new_vehicle['make']} {self.new_vehicle['model']}"
        vehicle = db.session.get(Vehicle, self.vehicle_id)
        return str(vehicle) if vehicle else None


def create_intake(customer, plan, data, photos, waiver):
    """Validate and store an intake. `photos` are (name, bytes or stream); `waiver` has ip and
    user_agent; None: the waiver is signed later (a scheduled appointment: on the day), so
    accepting it is not asked for now and no waiver row is added."""
    draft = check_intake(customer, plan, data, photos, waiver_now=waiver is not None)
    intake = add_intake(customer, plan, draft, waiver)
    store_photos(intake, draft)
    return intake


def check_intake(customer, plan, data, photos, waiver_now=True):
    """Every field rule of an intake, nothing stored: an IntakeDraft, or IntakeErrors with a
    message per field. `data["vehicle_id"]`: one of the customer's saved vehicles instead of
    year, make and model."""
    errors = {}
    draft = IntakeDraft(concern="", city="", country="", advice_only=bool(data.get("advice_only")))
    if not draft.advice_only and data.get("vehicle_id"):
        vehicle = db.session.get(Vehicle, data["vehicle_id"])
        if vehicle is None or vehicle.owner_id != customer.id:
            errors["vehicle"] = "Choose one of your vehicles, or add one."
        else:
            draft.vehicle_id = vehicle.id
    elif not draft.advice_only:
        draft.new_vehicle = _check_vehicle(data, errors)
    draft.concern, draft.city, draft.country = _check_concern(data, errors)
    if waiver_now and not data.get("accept_waiver"):
        errors["accept_waiver"] = "You must accept the waiver to continue."
    photos = [p for p in photos if p[0] or p[1]]
    if len(photos) > plan.max_photos:
        plural = "s" if plan.max_photos > 1 else ""
        errors["photos"] = f"The {plan.name} plan takes up to {plan.max_photos} photo{plural}."
    if "photos" not in errors:
        for name, content in photos:
            try:
                draft.photos.append(uploads.check(name, content, kinds=("image",)))
            except ValidationError as exc:
                errors["photos"] = exc.message
                break
    if errors:
        raise IntakeErrors(errors)
    return draft


def check_vehicle(customer, data):
    """The vehicle part of an intake alone (the book-now wizard's first step): (advice_only,
    saved vehicle id or None, new vehicle dict or None), or IntakeErrors for its fields."""
    errors = {}
    advice_only, vehicle_id, new_vehicle = bool(data.get("advice_only")), None, None
    if not advice_only and data.get("vehicle_id"):
        vehicle = db.session.get(Vehicle, data["vehicle_id"])
        if vehicle is None or vehicle.owner_id != customer.id:
            errors["vehicle"] = "Choose one of your vehicles, or add one."
        else:
            vehicle_id = vehicle.id
    elif not advice_only:
        new_vehicle = _check_vehicle(data, errors)
    if errors:
        raise IntakeErrors(errors)
    return advice_only, vehicle_id, new_vehicle


def check_concern(data):
    """The concern, city and country of an intake alone (trimmed; the country upper case), or
    IntakeErrors for those fields."""
    errors = {}
    checked = _check_concern(data, errors)
    if errors:
        raise IntakeErrors(errors)
    return checked


def _check_concern(data, errors):
    concern = (data.get("concern") or "").strip()
    if len(concern) < 10:
        errors["concern"] = "Describe the problem in at least 10 characters."
    elif len(concern) > 4000:
        errors["concern"] = "Keep the description under 4,000 characters."
    city, country = (data.get("city") or "").strip(), (data.get("country") or "").strip().upper()
    if not city:
        errors["city"] = "Enter your city."
    elif len(city) > 80:
        errors["city"] = "Keep the city under 80 characters."
    if len(country) != 2 or not country.isalpha():
        errors["country"] = "Choose your country."
    return concern, city, country


def _check_vehicle(data, errors):
    year, make, model = data.get("year"), (data.get("make") or "").strip(), (data.get("model") or "").strip()
    if not year or not (1950 <= year <= clock.now().year + 1):
        errors["year"] = f"Enter a year between 1950 and {clock.now().year + 1}."
    if not make:
        errors["make"] = "Enter the make, e.g. Honda."
    elif len(make) > 60:
        errors["make"] = "Keep the make under 60 characters."
    if not model:
        errors["model"] = "Enter the model, e.g. Civic."
    elif len(model) > 60:
        errors["model"] = "Keep the model under 60 characters."
    vin = decoded = None
    if data.get("vin"):
        try:
            vin, decoded = decode_vin(data["vin"])
        except ValidationError as exc:
            errors["vin"] = exc.message
    return {"year": year, "make": make, "model": model, "vin": vin, "vin_decoded": decoded}


def add_intake(customer, plan, draft, waiver=None):
    """Add (and flush) the intake of a checked draft, with a new vehicle if one was entered and
    the waiver acceptance when `waiver` (ip, user_agent) is given. Photos: store_photos."""
    vehicle = None
    if draft.new_vehicle:
        vehicle = Vehicle(owner_id=customer.id, **draft.new_vehicle)
        db.session.add(vehicle)
    elif draft.vehicle_id:
        vehicle = db.session.get(Vehicle, draft.vehicle_id)
    intake = Intake(customer=customer, vehicle=vehicle, plan=plan, concern=draft.concern, city=draft.city,
                    country=draft.country, advice_only=draft.advice_only)
    db.session.add(intake)
    db.session.flush()
    if waiver is not None:
        db.session.add(Waiver(user_id=customer.id, intake_id=intake.id, version=WAIVER_VERSION,
                              accepted_at=clock.now(), ip_address=(waiver.get("ip") or "unknown")[:45],
                              user_agent=(waiver.get("user_agent") or "unknown")[:400]))
    return intake


def store_photos(intake, draft):
    """Save the draft's photos with the intake (a rollback removes the saved files again)."""
    for upload in draft.photos:
        uploads.store(upload, intake.customer_id, intake_id=intake.id)
    db.session.flush()


class IntakeErrors(ValidationError):
    def __init__(self, errors):
        super().__init__("Please correct the highlighted fields.")
        self.errors = errors


def saved_vehicles(customer_id, limit=10):
    """The customer's vehicles, newest first, each car once (every intake saves the one typed)."""
    found, seen = [], set()
    for vehicle in db.session.scalars(db.select(Vehicle).where(Vehicle.owner_id == customer_id)
                                      .order_by(Vehicle.id.desc()).limit(100)):
        key = (vehicle.year, vehicle.make.casefold(), vehicle.model.casefold(), vehicle.vin or "")
        if key not in seen:
            seen.add(key)
            found.append(vehicle)
    return found[:limit]
