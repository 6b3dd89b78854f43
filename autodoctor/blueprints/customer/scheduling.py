"""The customer's scheduling page: book a mechanic for a later time, step by step on one page.

Every choice re-renders the steps (HTMX GET with the whole form), each step shown once the one
before it is chosen: online or in person -> plan -> mechanic (or any available) -> day -> time
-> review. Times are shown in the customer's own zone (detected in the browser, UTC when
unknown) and carried as naive-UTC instants. "Hold this time and pay" holds the slot for 15
minutes and sends the customer to checkout."""
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import request, url_for
from flask_login import current_user

from autodoctor import clock, htmx
from autodoctor.blueprints.customer import bp
from autodoctor.extensions import db
from autodoctor.models import Appointment, MechanicProfile, User
from autodoctor.services import appointments, availability, payments, plans, working_hours
from autodoctor.services.errors import ServiceError

DAYS_AHEAD = 14
KINDS = (("online", "Online", "Video or chat from wherever you are"),
         ("in_person", "In person", "Visit the mechanic's shop — $15 deposit now, balance after service"))
ANY = "any"
TIME_FORMAT = "%Y-%m-%dT%H:%M"


@dataclass
class Schedule:
    """What the customer has chosen so far, and what each next step offers."""

    zone: str = "UTC"
    kind: str | None = None
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

    @property
    def mechanic_user(self):
        if self.mechanic and self.mechanic != ANY:
            return next((user for user, _ in self.mechanics if str(user.id) == self.mechanic), None)
        return None

    @property
    def price_cents(self):
        return plans.appointment_charge_cents(self.plan, self.kind) if self.plan else None

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
    offer is dropped, and the steps after it are not shown."""
    now = now or clock.now()
    s = Schedule(zone=customer_zone(form.get("tz")))
    kind = form.get("kind")
    if kind not in [k for k, *_ in KINDS]:
        return s
    s.kind = kind
    s.plans = _bookable_plans()
    s.plan = next((p for p in s.plans if p.code == form.get("plan")), None)
    if s.plan is None:
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
    """The customer's next booked appointment, offered to manage instead of booking a second one."""
    return db.session.scalar(db.select(Appointment).where(
        Appointment.customer_id == customer_id, Appointment.status == "booked", Appointment.starts_at > now)
        .order_by(Appointment.starts_at).limit(1))


def _render(s, status=200, taken=None, form_error=None):
    return htmx.render("customer/schedule/index.html", "customer/schedule/_steps.html", status=status,
                       s=s, kinds=KINDS, any_choice=ANY, time_format=TIME_FORMAT, taken=taken,
                       form_error=form_error, format_price=plans.format_price,
                       upcoming=None if htmx.is_htmx() else _upcoming(current_user.id, clock.now()),
                       when_in=lambda instant, zone: Schedule(zone=zone).when(instant))


@bp.get("/schedule")
def schedule_index():
    return _render(build(request.args))


@bp.post("/schedule")
def schedule_create():
    s = build(request.form)
    wanted = _parse_instant(request.form.get("starts_at"))
    if s.day is not None and s.starts_at is None and wanted is not None:
        return _taken(s, wanted)  # gone since the page was drawn
    _require(s)
    if s.errors:
        return _render(s, 422, form_error="Please complete the highlighted steps.")
    candidates = [int(s.mechanic)] if s.mechanic != ANY else [
        mechanic_id for mechanic_id, found in sorted(s.slots.items())
        if any(slot.starts_at == s.starts_at for slot in found)]
    for mechanic_id in candidates:
        try:
            appointment = appointments.hold_slot(current_user.id, mechanic_id, s.plan, s.starts_at, s.kind, s.zone)
            url = payments.start_appointment_checkout(
                appointment, lambda payment_id: url_for("customer.checkout_success", payment_id=payment_id,
                                                        _external=True),
                url_for("customer.schedule_index", _external=True))
        except appointments.SlotTaken:
            db.session.rollback()
            continue
        except ServiceError as exc:
            db.session.rollback()
            return _render(s, 422, form_error=exc.message)
        db.session.commit()
        return htmx.redirect(url or url_for("customer.dashboard_index"))
    return _taken(build(request.form), s.starts_at)


def _taken(s, wanted):
    """Nobody can take `wanted` any more: say so, with the next free times from that day on."""
    lo = availability.day_window(availability.local(wanted, s.zone).date(), s.zone)[0]
    alternatives = sorted({slot.starts_at for slot in _chosen_slots(s) if slot.starts_at >= lo})[:6]
    s.starts_at = None
    return _render(s, 409, taken=alternatives)


def _require(s):
    if s.kind is None:
        s.errors["kind"] = "Choose an online or an in-person appointment."
    elif s.plan is None:
        s.errors["plan"] = "Choose a plan."
    elif s.mechanic is None:
        s.errors["mechanic"] = "Choose a mechanic, or “Any available”."
    elif s.day is None:
        s.errors["day"] = "Choose a day in the next two weeks."
    elif s.starts_at is None:
        s.errors["starts_at"] = "Choose a time."

