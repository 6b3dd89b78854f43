"""Demo data for `make run`: an admin, three approved mechanics (taking requests: online while
their dashboard is open), two customers, and one mechanic's application waiting for review (with
two small generated documents) so the admin's applications queue is not empty."""
import io
from datetime import timedelta

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import User
from autodoctor.services import accounts, applications, plans, uploads, working_hours

DEMO_PASSWORD = "autodoctor-demo"
DEMO_USERS = (
    ("admin@autodoctor.example", "Ada Admin", "admin", {}),
    ("mia@autodoctor.example", "Mia Mechanic", "mechanic",
     {"years_experience": 12, "red_seal": True, "brands": "Honda, Toyota", "specialties": "brakes, electrical",
      "online": True}),
    ("raj@autodoctor.example", "Raj Mechanic", "mechanic",
     {"years_experience": 6, "brands": "Ford", "specialties": "engine, transmission", "online": True}),
    ("lena@autodoctor.example", "Lena Mechanic", "mechanic",
     {"years_experience": 3, "brands": "BMW, Audi", "specialties": "diagnostics", "online": True}),
    ("carla@autodoctor.example", "Carla Customer", "customer", {}),
    ("dev@autodoctor.example", "Dev Customer", "customer", {}),
)
DEMO_APPLICANT = ("sam@autodoctor.example", "Sam Applicant")


def seed_demo():
    """Create the demo users (idempotent). Returns (email, role) pairs."""
    plans.seed_plans()
    for email, name, role, profile in DEMO_USERS:
        if db.session.scalar(db.select(User.id).where(User.email == email)):
            continue
        user = accounts.create_user(email, DEMO_PASSWORD, name, role=role, city="Toronto", country="CA")
        for key, value in profile.items():
            setattr(user.mechanic_profile, key, value)
        if role == "mechanic":
            seed_demo_availability(user)
    db.session.flush()
    seed_demo_applicant()
    return [(email, role) for email, _, role, _ in DEMO_USERS] + [(DEMO_APPLICANT[0], "applicant")]


def seed_demo_applicant():
    """A mechanic who applied an hour ago and waits for review: a certificate (PDF) and an
    insurance document (PNG), both generated here in a few milliseconds."""
    email, name = DEMO_APPLICANT
    if db.session.scalar(db.select(User.id).where(User.email == email)):
        return
    docs = applications.Documents(items=[
        ("certificate", uploads.check("red-seal-certificate.pdf", _demo_pdf(f"Certificate of Qualification - {name}"),
                                      kinds=applications.DOCUMENT_KINDS)),
        ("insurance", uploads.check("insurance.png", _demo_png(), kinds=applications.DOCUMENT_KINDS)),
    ])
    applications.apply(email, DEMO_PASSWORD, name, "Ottawa", "CA",
                       {"years_experience": 8, "red_seal": True, "specialties": "suspension, brakes",
                        "brands": "Subaru, Mazda", "bio": "Eight years at a dealership service bay in Ottawa."},
                       docs, now=clock.now() - timedelta(hours=1))


def _demo_pdf(text):
    """A one-page PDF saying `text` (hand-built: offsets computed, so any reader opens it)."""
    stream = f"BT /F1 18 Tf 60 700 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = io.BytesIO(), []
    out.write(b"%PDF-1.4\n")
    for n, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (n, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def _demo_png():
    """A small insurance-card-like picture."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (420, 260), (245, 248, 252))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 419, 50), fill=(11, 99, 206))
    draw.text((16, 18), "LIABILITY INSURANCE - PROOF OF COVERAGE", fill=(255, 255, 255))
    for n, line in enumerate(("Insured: Sam Applicant", "Policy: GL-2026-0042", "Valid: 2026-01-01 to 2027-01-01")):
        draw.text((16, 80 + 40 * n), line, fill=(30, 30, 30))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


DEMO_ZONES = {"lena@autodoctor.example": "America/Vancouver"}


def seed_demo_availability(mechanic):
    """Mon–Fri 09:00–12:00 and 13:00–17:00 in the mechanic's zone (Toronto; Lena: Vancouver)."""
    db.session.flush()
    mechanic.mechanic_profile.time_zone = DEMO_ZONES.get(mechanic.email, "America/Toronto")
    working_hours.replace_week(mechanic.id, {day: [("09:00", "12:00"), ("13:00", "17:00")] for day in range(5)})
