"""The waiver signed on the day of an appointment: a typed name and a signature drawn on a small
canvas, stored with the waiver's version, the time, the IP address and the browser. Online, the
customer signs on their own device from 15 minutes before the start; for an in-person visit
they sign on the shop's tablet (the mechanic's signed-in device)."""
import base64
import binascii
import io

from PIL import Image, UnidentifiedImageError
from sqlalchemy.exc import IntegrityError

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import Waiver
from autodoctor.offload import off_hub
from autodoctor.services.errors import ValidationError
from autodoctor.services.intakes import WAIVER_VERSION

MAX_SIGNATURE_BYTES = 200 * 1024
MAX_SIGNATURE_PX = 2000
MIN_INK_PIXELS = 40  # a drawn stroke, not an accidental tap
PNG_DATA_URL = "data:image/png;base64,"
SIGNED_ON = ("customer", "shop_tablet")


class WaiverErrors(ValidationError):
    def __init__(self, errors):
        super().__init__("Please correct the highlighted fields.")
        self.errors = errors


def check(name, signature_data_url, expected_name=None):
    """(typed name, PNG bytes) from the form, or WaiverErrors with a message per field."""
    errors = {}
    name = " ".join((name or "").split())
    if len(name) < 2:
        errors["signed_name"] = "Type your full name."
    elif len(name) > 120:
        errors["signed_name"] = "Keep your name under 120 characters."
    elif expected_name and name.casefold() != " ".join(expected_name.split()).casefold():
        errors["signed_name"] = f"Type the name on the booking: {expected_name}."
    png = None
    try:
        png = _signature_png(signature_data_url)
    except ValidationError as exc:
        errors["signature"] = exc.message
    if errors:
        raise WaiverErrors(errors)
    return name, png


def _signature_png(data_url):
    data_url = (data_url or "").strip()
    if not data_url:
        raise ValidationError("Sign in the box with your finger or mouse.")
    if not data_url.startswith(PNG_DATA_URL) or len(data_url) > MAX_SIGNATURE_BYTES * 4 // 3 + 100:
        raise ValidationError("That signature could not be read. Clear it and sign again.")
    try:
        png = base64.b64decode(data_url[len(PNG_DATA_URL):], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("That signature could not be read. Clear it and sign again.") from None
    if off_hub("image", _ink, png) < MIN_INK_PIXELS:
        raise ValidationError("Sign in the box with your finger or mouse.")
    return png


def _ink(png):
    """How many pixels of the signature image carry ink (not transparent and not white)."""
    try:
        with Image.open(io.BytesIO(png)) as img:
            if img.format != "PNG" or max(img.size) > MAX_SIGNATURE_PX:
                raise ValidationError("That signature could not be read. Clear it and sign again.")
            alpha = img.convert("LA")
            return sum(1 for lum, a in alpha.getdata() if a > 32 and lum < 200)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise ValidationError("That signature could not be read. Clear it and sign again.") from None


def sign(intake, customer_id, name, png, ip, user_agent, signed_on="customer"):
    """Store the signed waiver of an intake once; signing again (a double submit, a second tab)
    keeps the first signature. Returns the waiver."""
    assert signed_on in SIGNED_ON
    existing = signed(intake)
    if existing is not None:
        return existing
    waiver = Waiver(user_id=customer_id, intake_id=intake.id, version=WAIVER_VERSION, accepted_at=clock.now(),
                    ip_address=(ip or "unknown")[:45], user_agent=(user_agent or "unknown")[:400],
                    signed_name=name, signature_png=png, signed_on=signed_on)
    try:
        with db.session.begin_nested():
            db.session.add(waiver)
    except IntegrityError:  # signed at the same moment elsewhere: that one counts
        return signed(intake)
    return waiver


def signed(intake):
    if intake is None:
        return None
    return db.session.scalar(db.select(Waiver).where(Waiver.intake_id == intake.id))
