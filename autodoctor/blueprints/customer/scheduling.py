"""The customer's scheduling page: book a mechanic for a later time, step by step on one page.

Every choice re-renders the steps (HTMX GET with the form's short values), each step shown once
the one before it is chosen: online or in person -> vehicle -> plan -> mechanic (or any
available) -> day -> time -> concern -> review. Times are shown in the customer's own zone
(detected in the browser, UTC when unknown) and carried as naive-UTC instants.

The concern step (text, city, country, photos) is drawn with every render but its inputs are
kept as they are in the browser (hx-preserve) and left out of the GETs, so typed text and
picked photos survive every redraw and long text never goes into a URL. "Review" (a multipart
POST) checks everything, photos included, without storing anything; "Hold this time and pay"
checks it again, holds the slot for 15 minutes with the intake (its waiver is signed on the
day) and sends the customer to checkout. "Schedule for later instead" on the book-now page
lands here with what the customer had typed (GET parameters)."""
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import flash, redirect, request, url_for
from flask_login import current_user

from autodoctor import clock, htmx
from autodoctor.blueprints.customer import bp
from autodoctor.blueprints.customer.forms import COUNTRIES
from autodoctor.extensions import db
from autodoctor.models import Appointment, Intake, MechanicProfile, User
from autodoctor.services import appointments, availability, intakes, money, payments, plans, working_hours
from autodoctor.services.errors import ServiceError

DAYS_AHEAD = 14
KINDS = (("online", "Online", "Video or chat from wherever you are"),
         ("in_person", "In person", "Visit the mechanic's shop — $15 deposit now, balance after service"))
ANY = "any"
NEW_VEHICLE, NO_VEHICLE = "new", "none"
TIME_FORMAT = "%Y-%m-%dT%H:%M"
# What the customer types, with the most of each kept from a query or a form (the intake rules
# refuse longer values when the form is sent; a query from the book-now page is cut).
TEXT_LIMITS = {"year": 4, "make": 60, "model": 60, "vin": 20, "concern": 4000, "city": 80, "country": 2}
# Kept in the browser between redraws and left out of the GETs (long text has no place in a URL).
LEFT_OUT_OF_GETS = ("concern", "city", "country", "photos", "csrf_token")
# The names a scheduling URL may carry (a link or a redirect rebuilt from a query keeps only
# these: url_for would read `_scheme`, `_external`... as its own options).
QUERY_NAMES = ("tz", "kind", "vehicle", "plan", "mechanic", "day", "starts_at", "advice_only", "from",
               *TEXT_LIMITS)
CONCERN_PREVIEW = 120
SAVED_VEHICLES = 10
IMAGE_ACCEPT = "image/jpeg,image/png,image/webp,.jpg,.jpeg,.png,.webp"


@dataclass
class Schedule:
    """What the customer has chosen so far, and what each next step offers."""

    zone: str = "UTC"
    kind: str | None = None
    vehicles: list = field(default_factory=list)  # the customer's saved vehicles
    vehicle: str | None = None  # a saved vehicle id as text, NEW_VEHICLE or NO_VEHICLE
    details: dict = field(default_factory=dict)  # typed text: TEXT_LIMITS' names
    plans: list = field(default_factory=list)
    plan: object = None
    mechanics: list = field(default_factory=list)  # [(user, next free Slot or None)]
    mechanic: str | None = None  # a mechanic id as text, or ANY
    days: list = field(default_factory=list)  # [(date, has free times)]
    day: object = None
    times: list = field(default_factory=list)  # [(naive-UTC start, label)]
    starts_at: datetime | None = None
    errors: dict = field(default_factory=dict)
    slots: dict = field(default_factory=dict)  # {mechanic id: [Slot]} over the 14 days
    review: object = None  # an intakes.IntakeDraft once everything was checked
    credit_cents: int = 0

    @property
    def show_vehicle(self):
        return self.kind is not None

    @property
    def show_plan(self):
        return self.show_vehicle and self.vehicle is not None

    @property
    def show_mechanic(self):
        return self.show_plan and self.plan is not None

    @property
    def saved_vehicle(self):
        return next((v for v in self.vehicles if str(v.id) == self.vehicle), None)

    @property
    def mechanic_user(self):
        if self.mechanic and self.mechanic != ANY:
            return next((user for user, _ in self.mechanics if str(user.id) == self.mechanic), None)
        return None

    @property
    def price_cents(self):
        return plans.appointment_charge_cents(self.plan, self.kind) if self.plan else None

    @property
    def to_pay_cents(self):
        return max(self.price_cents - self.credit_cents, 0)

    @property
    def concern_preview(self):
        text = " ".join(self.review.concern.split()) if self.review else ""
        return text if len(text) <= CONCERN_PREVIEW else text[:CONCERN_PREVIEW - 1].rstrip() + "…"

    def label(self, instant, fmt="%H:%M"):
        return availability.local(instant, self.zone).strftime(fmt)

    def when(self, instant):
        moment = availability.local(instant, self.zone)
        return f"{moment:%a} {moment.day} {moment:%b %Y}, {moment:%H:%M}"


def customer_zone(value):
    value = (value or "").strip()
    return value if working_hours.is_zone(value) else "UTC"


def _bookable_plans():
    return [p for p in plans.list_plans() if p.price_cents > 0]


def _mechanics():
    return db.session.scalars(db.select(User).join(MechanicProfile, MechanicProfile.user_id == User.id).where(
        User.role == "mechanic", User.is_active_account, MechanicProfile.approved).order_by(User.full_name, User.id)).all()


def _saved_vehicles(customer_id):
    return intakes.saved_vehicles(customer_id, SAVED_VEHICLES)


def _details(form, customer_id):
    """The typed text, trimmed and cut to its limit; city and country default to the
    customer's last intake (or their profile)."""
    details = {name: (form.get(name) or "").strip()[:limit] for name, limit in TEXT_LIMITS.items()}
    details["country"] = details["country"].upper()
    if details["country"] not in {code for code, _ in COUNTRIES if code}:
        details["country"] = ""
    if not details["city"] and not details["country"] and "city" not in form:
        last = db.session.scalar(db.select(Intake).where(Intake.customer_id == customer_id)
                                 .order_by(Intake.id.desc()).limit(1))
        source = last or current_user
        details["city"], details["country"] = (source.city or "")[:80], (source.country or "").upper()[:2]
    return details


def _vehicle_choice(form, s):
    """A saved vehicle's id, NEW_VEHICLE or NO_VEHICLE; from the book-now page (no `vehicle`
    value): advice only, or the vehicle typed there (a saved one when it is the same car)."""
    choice = form.get("vehicle")
    if choice in (NEW_VEHICLE, NO_VEHICLE) or any(str(v.id) == choice for v in s.vehicles):
        return choice
    if choice is not None:
        return None
    if form.get("advice_only"):
        return NO_VEHICLE
    d = s.details
    if not (d["year"] or d["make"] or d["model"]):
        return None
    same = next((v for v in s.vehicles if str(v.year) == d["year"] and v.make.casefold() == d["make"].casefold()
                 and v.model.casefold() == d["model"].casefold() and (v.vin or "") == d["vin"].upper()), None)
    return str(same.id) if same else NEW_VEHICLE


def _parse_day(value):
    try:
        return datetime.strptime(value or "", "%Y-%m-%d").date()
    except ValueError:
        return None


def _parse_instant(value):
    try:
        return datetime.strptime(value or "", TIME_FORMAT)
    except ValueError:
        return None


def build(form, now=None):
    """The steps for the values in `form` (a mapping); a value that is not (or no longer) on
    offer is dropped, and the steps after it are not shown. A vehicle and a plan given before
    their steps are shown (from the book-now page) are kept for when they are."""
    now = now or clock.now()
    s = Schedule(zone=customer_zone(form.get("tz")))
    s.details = _details(form, current_user.id)
    s.vehicles = _saved_vehicles(current_user.id)
    s.vehicle = _vehicle_choice(form, s)
    s.plans = _bookable_plans()
    s.plan = next((p for p in s.plans if p.code == form.get("plan")), None)
    kind = form.get("kind")
    if kind in [k for k, *_ in KINDS]:
        s.kind = kind
    if not s.show_mechanic:
        return s
    today = availability.local(now, s.zone).date()
    last = today + timedelta(days=DAYS_AHEAD - 1)
    window = availability.day_window(today, s.zone)[0], availability.day_window(last, s.zone)[1]
    users = _mechanics()
    s.slots = availability.slots_for_mechanics([u.id for u in users], *window, s.plan.minutes, now)
    s.mechanics = [(u, (s.slots.get(u.id) or [None])[0]) for u in users]
    choice = form.get("mechanic")
    if choice == ANY or any(str(u.id) == choice for u in users):
        s.mechanic = choice
    else:
        return s
    starts = sorted({slot.starts_at for slot in _chosen_slots(s)})
    free_days = {availability.local(start, s.zone).date() for start in starts}
    s.days = [(today + timedelta(days=n), today + timedelta(days=n) in free_days) for n in range(DAYS_AHEAD)]
    s.day = _parse_day(form.get("day"))
    if s.day is None or not today <= s.day <= last:
        s.day = None
        return s
    lo, hi = availability.day_window(s.day, s.zone)
    s.times = [(start, s.label(start)) for start in starts if lo <= start < hi]
    chosen = _parse_instant(form.get("starts_at"))
    s.starts_at = chosen if any(start == chosen for start, _ in s.times) else None
    return s


def _chosen_slots(s):
    if s.mechanic == ANY:
        return [slot for found in s.slots.values() for slot in found]
    return s.slots.get(int(s.mechanic), [])


def _upcoming(customer_id, now):
    """The customer's next booked appointment, offered to move or cancel instead of booking a second one."""
    return db.session.scalar(db.select(Appointment).where(
        Appointment.customer_id == customer_id, Appointment.status == "booked", Appointment.starts_at > now)
        .order_by(Appointment.starts_at).limit(1))


def _render(s, status=200, taken=None, form_error=None):
    now = clock.now()
    page = not htmx.is_htmx()
    offer = page and request.method == "GET" and not request.args.get("another")
    upcoming = _upcoming(current_user.id, now) if offer else None
    return htmx.render("customer/schedule/index.html", "customer/schedule/_steps.html", status=status,
                       s=s, kinds=KINDS, any_choice=ANY, new_vehicle=NEW_VEHICLE, no_vehicle=NO_VEHICLE,
                       countries=COUNTRIES, left_out=LEFT_OUT_OF_GETS, image_accept=IMAGE_ACCEPT,
                       time_format=TIME_FORMAT, taken=taken, form_error=form_error, format_price=plans.format_price,
                       upcoming=upcoming,
                       can_move=upcoming is not None and upcoming.starts_at - now >= appointments.PARTIAL_REFUND_BEFORE,
                       another_url=url_for("customer.schedule_index", **_query(), another="1"),
                       carried=page and request.args.get("from") == "intake",
                       when_in=lambda instant, zone: Schedule(zone=zone).when(instant))


@bp.get("/schedule")
def schedule_index():
    if "csrf_token" in request.args:  # the book-now form sent here: keep its token (and the rest) out of the URL
        return redirect(url_for("customer.schedule_index", **_query()), code=303)
    return _render(build(request.args))


def _query():
    return {name: value for name, value in request.args.items() if name in QUERY_NAMES}


@bp.post("/schedule/review")
def schedule_review():
    """Check every step and field (photos included) and show what will be booked; nothing is stored."""
    s = build(request.form)
    draft = _check(s)
    if s.errors:
        return _render(s, 422, form_error=_error_message(s))
    s.review, s.credit_cents = draft, money.credit_balance(current_user.id)
    return _render(s)


@bp.post("/schedule")
def schedule_create():
    s = build(request.form)
    wanted = _parse_instant(request.form.get("starts_at"))
    if s.day is not None and s.starts_at is None and wanted is not None:
        return _taken(s, wanted)  # gone since the page was drawn
    draft = _check(s)
    if s.errors:
        return _render(s, 422, form_error=_error_message(s))
    candidates = [int(s.mechanic)] if s.mechanic != ANY else [
        mechanic_id for mechanic_id, found in sorted(s.slots.items())
        if any(slot.starts_at == s.starts_at for slot in found)]
    for mechanic_id in candidates:
        try:
            url = _hold(s, draft, mechanic_id)
        except appointments.SlotTaken:
            db.session.rollback()  # the intake goes with it; no photo was stored yet
            continue
        except ServiceError as exc:
            db.session.rollback()
            return _render(s, 422, form_error=exc.message)
        db.session.commit()
        if url is None:  # nothing to pay by card (account credit covered it): booked already
            flash("Your appointment is booked. It was paid from your account credit.", "success")
            return htmx.redirect(url_for("customer.appointments_index"))
        return htmx.redirect(url)
    return _taken(build(request.form), s.starts_at)


def _hold(s, draft, mechanic_id):
    """Intake, hold, photos, checkout — in one transaction, the photos stored only once the
    time is held (a taken time leaves nothing behind). Returns the checkout URL."""
    intake = intakes.add_intake(current_user, s.plan, draft)  # no waiver row: it is signed on the day
    appointment = appointments.hold_slot(current_user.id, mechanic_id, s.plan, s.starts_at, s.kind, s.zone,
                                         intake=intake, any_mechanic=s.mechanic == ANY)
    intakes.store_photos(intake, draft)
    return payments.start_appointment_checkout(
        appointment, lambda payment_id: url_for("customer.checkout_success", payment_id=payment_id, _external=True),
        url_for("customer.schedule_index", _external=True))


def _check(s):
    """The first missing step, else the intake's field errors, into `s.errors`; the checked
    intake (an IntakeDraft) when there are none."""
    _require(s)
    if s.errors:
        return None
    form = request.form  # as sent: the intake rules refuse what is too long rather than cut it
    year = (form.get("year") or "").strip()
    data = {"advice_only": s.vehicle == NO_VEHICLE, "vehicle_id": s.saved_vehicle.id if s.saved_vehicle else None,
            "year": int(year) if year.isdigit() and len(year) <= 4 else None, "make": form.get("make"),
            "model": form.get("model"), "vin": form.get("vin"), "concern": form.get("concern"),
            "city": form.get("city"), "country": s.details["country"]}
    photos = [(f.filename, f.stream) for f in request.files.getlist("photos") if f and f.filename]
    try:
        return intakes.check_intake(current_user, s.plan, data, photos, waiver_now=False)
    except intakes.IntakeErrors as exc:
        s.errors.update(exc.errors)
        return None


def _error_message(s):
    steps = {"kind", "vehicle", "plan", "mechanic", "day", "starts_at"}
    return ("Please complete the highlighted steps." if steps & set(s.errors)
            else "Please correct the highlighted fields.")


def _taken(s, wanted):
    """Nobody can take `wanted` any more: say so, with the next free times from that day on."""
    lo = availability.day_window(availability.local(wanted, s.zone).date(), s.zone)[0]
    alternatives = sorted({slot.starts_at for slot in _chosen_slots(s) if slot.starts_at >= lo})[:6]
    s.starts_at = None
    return _render(s, 409, taken=alternatives)


def _require(s):
    if s.kind is None:
        s.errors["kind"] = "Choose an online or an in-person appointment."
    elif s.vehicle is None:
        s.errors["vehicle"] = "Choose a vehicle, add one, or choose “Just advice”."
    elif s.plan is None:
        s.errors["plan"] = "Choose a plan."
    elif s.mechanic is None:
        s.errors["mechanic"] = "Choose a mechanic, or “Any available”."
    elif s.day is None:
        s.errors["day"] = "Choose a day in the next two weeks."
    elif s.starts_at is None:
        s.errors["starts_at"] = "Choose a time."
