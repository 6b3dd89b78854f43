"""The write side of a mechanic's availability: weekly hours, date overrides, time off and
the scheduling settings, with the state the availability editor shows.

Weekly hours and overrides are wall-clock minutes in the mechanic's zone; time off is
entered as local date-times and stored as naive UTC instants. `services/availability.py`
is the only reader that turns all this into bookable slots."""
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import MechanicProfile
from autodoctor.models.scheduling import DateOverride, TimeOff, WeeklyHours
from autodoctor.services.errors import NotFound, ValidationError

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
STEP_MINUTES = 15
MAX_RANGES_PER_DAY = 8
MAX_TIME_OFF_DAYS = 90
MAX_REASON_LENGTH = 200
OVERRIDE_DAYS_AHEAD = 365
BUFFER_RANGE = (0, 120)
DAILY_CAP_RANGE = (1, 48)
BOOKING_WINDOW_RANGE = (1, 365)
# Regions offered in the time zone picker (any IANA name is still accepted).
ZONE_REGIONS = ("America", "Europe", "Asia", "Africa", "Australia", "Pacific", "Atlantic", "Indian", "Antarctica")


class AvailabilityInvalid(ValidationError):
    """One or more fields are wrong; `errors` maps a field key to its message."""

    def __init__(self, errors, message="Not saved. Check the fields marked below."):
        super().__init__(message)
        self.errors = errors


# --- parsing -------------------------------------------------------------------------------

def format_minute(minute):
    """Minutes after midnight as HH:MM for a time input (the end of the day, 1440, is 00:00)."""
    minute %= 1440
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _minute(value, *, end=False):
    """'HH:MM' (or an int) -> minutes after midnight. An end of 00:00 (or 24:00) means midnight
    at the end of the day. Raises ValueError with a user-facing message."""
    if isinstance(value, int):
        minute = value
    else:
        text = (value or "").strip()
        try:
            hours, minutes = text.split(":")[:2]
            hours, minutes = int(hours), int(minutes)
        except ValueError:
            raise ValueError("Enter times as HH:MM.") from None
        if not (0 <= hours <= 24 and 0 <= minutes < 60) or (hours == 24 and minutes):
            raise ValueError(f"{text} is not a time of day.")
        minute = hours * 60 + minutes
    if end and minute == 0:
        minute = 1440
    if not 0 <= minute <= 1440:
        raise ValueError("Times must be within the day.")
    if minute % STEP_MINUTES:
        raise ValueError(f"Use times on the quarter hour (:00, :15, :30 or :45), not {format_minute(minute)}.")
    return minute


def _ranges(pairs):
    """Validate one day's ranges: [(start, end), ...] as 'HH:MM' or minutes. Blank rows are
    ignored. Returns sorted [(start_minute, end_minute)]; raises ValueError with a message."""
    ranges = []
    for start, end in pairs:
        blank = [v in (None, "") or (isinstance(v, str) and not v.strip()) for v in (start, end)]
        if all(blank):
            continue
        if any(blank):
            raise ValueError("Each range needs both a start and an end time.")
        start_minute, end_minute = _minute(start), _minute(end, end=True)
        if start_minute >= end_minute:
            raise ValueError(f"{format_minute(start_minute)}–{format_minute(end_minute)}: "
                             "the end must be after the start.")
        ranges.append((start_minute, end_minute))
    if len(ranges) > MAX_RANGES_PER_DAY:
        raise ValueError(f"At most {MAX_RANGES_PER_DAY} ranges a day.")
    ranges.sort()
    for (s1, e1), (s2, e2) in zip(ranges, ranges[1:], strict=False):
        if s2 < e1:
            raise ValueError(f"{format_minute(s1)}–{format_minute(e1)} overlaps "
                             f"{format_minute(s2)}–{format_minute(e2)}.")
    return ranges


def _day(value):
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        raise ValueError("Choose a date.") from None


def _local_datetime(value):
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    text = (value or "").strip()
    if not text:
        raise ValueError("Choose a date and time.")
    try:
        return datetime.fromisoformat(text).replace(tzinfo=None, second=0, microsecond=0)
    except ValueError:
        raise ValueError("Enter a date and time.") from None


def _integer(value, low, high, label, *, optional=False):
    if isinstance(value, str):
        value = value.strip()
    if value in (None, ""):
        if optional:
            return None
        raise ValueError(f"Enter the {label}.")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"The {label} must be a whole number.") from None
    if not low <= number <= high:
        raise ValueError(f"The {label} must be between {low} and {high}.")
    return number


# --- zones ---------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _zones():
    return frozenset(available_timezones())


def is_zone(name):
    return name in _zones()


@lru_cache(maxsize=1)
def zone_groups():
    """[(region, [(zone, label), ...]), ...] for the picker: UTC, then the regions A–Z."""
    groups = {}
    for zone in sorted(_zones()):
        region, _, rest = zone.partition("/")
        if region in ZONE_REGIONS and rest:
            groups.setdefault(region, []).append((zone, rest.replace("_", " ").replace("/", " – ")))
    return [("Universal", [("UTC", "UTC")])] + sorted(groups.items())


def to_utc(local, zone):
    """A naive wall-clock time in `zone` -> naive UTC. A time skipped by a daylight-saving
    change (02:30 on a spring-forward night) moves forward by the gap; a repeated one (01:30
    on a fall-back night) is the first of the two."""
    # fold=0 (PEP 495) reads a skipped time with the offset in force before the change, which
    # lands the gap's length later, and a repeated time as its first occurrence.
    return local.replace(tzinfo=ZoneInfo(zone), fold=0).astimezone(UTC).replace(tzinfo=None)


def to_local(instant, zone):
    """Naive UTC -> naive wall-clock time in `zone`."""
    return instant.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None)


# --- reads ---------------------------------------------------------------------------------

def _profile(mechanic_id):
    profile = db.session.get(MechanicProfile, mechanic_id)
    if profile is None:
        raise NotFound("No such mechanic.")
    return profile


def local_today(mechanic_id):
    return to_local(clock.now(), _profile(mechanic_id).time_zone).date()


@dataclass
class Day:
    weekday: int
    name: str
    ranges: list  # [(start "HH:MM", end "HH:MM")]
    error: str | None = None


@dataclass
class Override:
    day: date
    ranges: list  # [(start "HH:MM", end "HH:MM")]; empty = day off

    @property
    def day_off(self):
        return not self.ranges


@dataclass
class Absence:
    id: int
    starts_local: datetime
    ends_local: datetime
    reason: str


@dataclass
class EditorState:
    time_zone: str
    buffer_minutes: int
    daily_cap: int | None
    booking_window_days: int
    week: list = field(default_factory=list)
    overrides: list = field(default_factory=list)
    time_off: list = field(default_factory=list)
    today: date | None = None


def weekly_state(mechanic_id):
    rows = db.session.scalars(db.select(WeeklyHours).where(WeeklyHours.mechanic_id == mechanic_id)
                              .order_by(WeeklyHours.weekday, WeeklyHours.start_minute)).all()
    week = [Day(n, name, []) for n, name in enumerate(WEEKDAYS)]
    for row in rows:
        week[row.weekday].ranges.append((format_minute(row.start_minute), format_minute(row.end_minute)))
    return week


def upcoming_overrides(mechanic_id):
    today = local_today(mechanic_id)
    rows = db.session.scalars(db.select(DateOverride).where(DateOverride.mechanic_id == mechanic_id,
                                                            DateOverride.day >= today)
                              .order_by(DateOverride.day, DateOverride.start_minute)).all()
    by_day = {}
    for row in rows:
        ranges = by_day.setdefault(row.day, [])
        if row.start_minute is not None:
            ranges.append((format_minute(row.start_minute), format_minute(row.end_minute)))
    return [Override(day, ranges) for day, ranges in by_day.items()]


def upcoming_time_off(mechanic_id):
    zone = _profile(mechanic_id).time_zone
    rows = db.session.scalars(db.select(TimeOff).where(TimeOff.mechanic_id == mechanic_id,
                                                       TimeOff.ends_at > clock.now())
                              .order_by(TimeOff.starts_at)).all()
    return [Absence(row.id, to_local(row.starts_at, zone), to_local(row.ends_at, zone), row.reason) for row in rows]


def editor_state(mechanic_id):
    """Everything the availability editor shows, in the mechanic's local time."""
    profile = _profile(mechanic_id)
    return EditorState(time_zone=profile.time_zone, buffer_minutes=profile.buffer_minutes,
                       daily_cap=profile.daily_cap, booking_window_days=profile.booking_window_days,
                       week=weekly_state(mechanic_id), overrides=upcoming_overrides(mechanic_id),
                       time_off=upcoming_time_off(mechanic_id), today=local_today(mechanic_id))


# --- writes --------------------------------------------------------------------------------

def replace_week(mechanic_id, week):
    """Replace the whole week: `week` maps weekday (0 = Monday) to [(start, end), ...]; a
    weekday missing or empty is a day off. Errors are keyed `weekday-<n>`."""
    _profile(mechanic_id)
    errors, parsed = {}, {}
    for weekday, pairs in (week or {}).items():
        if not (isinstance(weekday, int) and 0 <= weekday <= 6):
            raise ValidationError(f"Unknown weekday {weekday!r}.")
        try:
            parsed[weekday] = _ranges(pairs)
        except ValueError as exc:
            errors[f"weekday-{weekday}"] = f"{WEEKDAYS[weekday]}: {exc}"
    if errors:
        raise AvailabilityInvalid(errors)
    db.session.execute(db.delete(WeeklyHours).where(WeeklyHours.mechanic_id == mechanic_id))
    for weekday, ranges in sorted(parsed.items()):
        for start, end in ranges:
            db.session.add(WeeklyHours(mechanic_id=mechanic_id, weekday=weekday, start_minute=start, end_minute=end))
    db.session.flush()
    return weekly_state(mechanic_id)


def set_override(mechanic_id, day, ranges=(), day_off=False):
    """Give one local date its own hours (or make it a day off), replacing any it had.
    Errors are keyed `day` and `ranges`."""
    profile = _profile(mechanic_id)
    errors = {}
    try:
        day = _day(day)
        today = local_today(mechanic_id)
        if day < today:
            errors["day"] = "Choose today or a later date."
        elif day > today + timedelta(days=OVERRIDE_DAYS_AHEAD):
            errors["day"] = f"Choose a date within the next {OVERRIDE_DAYS_AHEAD} days."
    except ValueError as exc:
        errors["day"] = str(exc)
    parsed = []
    if not day_off:
        try:
            parsed = _ranges(ranges)
            if not parsed:
                errors["ranges"] = "Add the hours you work that day, or tick “Day off”."
        except ValueError as exc:
            errors["ranges"] = str(exc)
    if errors:
        raise AvailabilityInvalid(errors)
    db.session.execute(db.delete(DateOverride).where(DateOverride.mechanic_id == profile.user_id,
                                                     DateOverride.day == day))
    if day_off:
        db.session.add(DateOverride(mechanic_id=mechanic_id, day=day))
    for start, end in parsed:
        db.session.add(DateOverride(mechanic_id=mechanic_id, day=day, start_minute=start, end_minute=end))
    db.session.flush()
    return Override(day, [(format_minute(s), format_minute(e)) for s, e in parsed])


def clear_override(mechanic_id, day):
    """Back to the weekly hours on that date."""
    _profile(mechanic_id)
    try:
        day = _day(day)
    except ValueError:
        raise ValidationError("Choose the date to remove.", field="day") from None
    deleted = db.session.execute(db.delete(DateOverride).where(DateOverride.mechanic_id == mechanic_id,
                                                               DateOverride.day == day)).rowcount
    if not deleted:
        raise NotFound("That date has no special hours any more.")
    db.session.flush()
    return day


def add_time_off(mechanic_id, starts_local, ends_local, reason=""):
    """Time off between two local date-times in the mechanic's zone, stored as UTC instants.
    Errors are keyed `starts_at`, `ends_at` and `reason`."""
    profile = _profile(mechanic_id)
    errors = {}
    starts = ends = None
    try:
        starts = _local_datetime(starts_local)
    except ValueError as exc:
        errors["starts_at"] = str(exc)
    try:
        ends = _local_datetime(ends_local)
    except ValueError as exc:
        errors["ends_at"] = str(exc)
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON_LENGTH:
        errors["reason"] = f"Keep the note under {MAX_REASON_LENGTH} characters."
    if starts and ends:
        starts_at, ends_at = to_utc(starts, profile.time_zone), to_utc(ends, profile.time_zone)
        if ends_at <= starts_at:
            errors["ends_at"] = "The end must be after the start."
        elif ends_at - starts_at > timedelta(days=MAX_TIME_OFF_DAYS):
            errors["ends_at"] = f"Time off can last at most {MAX_TIME_OFF_DAYS} days; add another entry for more."
        elif ends_at <= clock.now():
            errors["ends_at"] = "This time is already over."
        else:
            clash = db.session.scalar(db.select(TimeOff).where(
                TimeOff.mechanic_id == mechanic_id, TimeOff.starts_at < ends_at, TimeOff.ends_at > starts_at)
                .order_by(TimeOff.starts_at).limit(1))
            if clash:
                start, end = to_local(clash.starts_at, profile.time_zone), to_local(clash.ends_at, profile.time_zone)
                errors["starts_at"] = (f"Overlaps your time off from {start:%b %d %H:%M} to {end:%b %d %H:%M}; "
                                       "remove that one first or pick other times.")
    if errors:
        raise AvailabilityInvalid(errors)
    row = TimeOff(mechanic_id=mechanic_id, starts_at=starts_at, ends_at=ends_at, reason=reason)
    db.session.add(row)
    db.session.flush()
    return row


def delete_time_off(mechanic_id, time_off_id):
    row = db.session.get(TimeOff, time_off_id) if isinstance(time_off_id, int) else None
    if row is None or row.mechanic_id != mechanic_id:
        raise NotFound("That time off was already removed.")
    db.session.delete(row)
    db.session.flush()


def update_settings(mechanic_id, time_zone, buffer_minutes, daily_cap, booking_window_days):
    """Time zone (an IANA name), buffer after each appointment, daily cap (blank: none) and
    booking window. Errors are keyed by the argument names."""
    profile = _profile(mechanic_id)
    errors, values = {}, {}
    time_zone = (time_zone or "").strip()
    if not time_zone:
        errors["time_zone"] = "Choose your time zone."
    elif not is_zone(time_zone):
        errors["time_zone"] = f"“{time_zone}” is not a time zone we know; pick one from the list."
    else:
        values["time_zone"] = time_zone
    checks = (("buffer_minutes", buffer_minutes, BUFFER_RANGE, "buffer (minutes)", False),
              ("daily_cap", daily_cap, DAILY_CAP_RANGE, "daily limit", True),
              ("booking_window_days", booking_window_days, BOOKING_WINDOW_RANGE, "booking window (days)", False))
    for key, value, (low, high), label, optional in checks:
        try:
            values[key] = _integer(value, low, high, label, optional=optional)
        except ValueError as exc:
            errors[key] = str(exc)
    if errors:
        raise AvailabilityInvalid(errors)
    for key, value in values.items():
        setattr(profile, key, value)
    db.session.flush()
    return profile
