"""What is bookable: the only place that answers "can this mechanic be booked at this time".

Slots are 30 minutes on the mechanic's wall clock (:00 and :30 in their zone) inside their
weekly hours, or inside a date override's hours on that date; minus time off, minus held or
booked appointments widened by the mechanic's buffer, minus days that reached the daily cap;
from 2 hours ahead (minimum notice) up to the booking window. Every instant in and out is
naive UTC; zones only matter for the wall clock, so a slot is right on both sides of a
daylight-saving change and shows correctly in any customer's zone (`local`).

A wall time that does not exist (the hour skipped in spring) gives no slot; one that exists
twice (the hour repeated in autumn) gives one slot, its first occurrence.
"""
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import Appointment, DateOverride, MechanicProfile, TimeOff, WeeklyHours

SLOT_MINUTES = 30
MIN_NOTICE = timedelta(hours=2)


@dataclass(frozen=True, order=True)
class Slot:
    starts_at: datetime  # naive UTC
    ends_at: datetime


def slots(mechanic_id, window_start, window_end, minutes=SLOT_MINUTES, now=None, moving=None):
    """The bookable slots of one mechanic starting in [window_start, window_end) (naive UTC),
    each `minutes` long (a 45- or 60-minute plan needs that much free time from a slot start).
    `moving`: the id of an appointment being rescheduled, whose own time does not count."""
    return slots_for_mechanics([mechanic_id], window_start, window_end, minutes, now, moving).get(mechanic_id, [])


def is_bookable(mechanic_id, starts_at, minutes=SLOT_MINUTES, now=None, moving=None):
    """True if an appointment of `minutes` may start at `starts_at` (naive UTC) now."""
    return Slot(starts_at, starts_at + timedelta(minutes=minutes)) in slots(
        mechanic_id, starts_at, starts_at + timedelta(seconds=1), minutes, now, moving)


def free_at(mechanic_ids, starts_at, minutes, now=None, moving=None):
    """The mechanics (in the order given) who could take an appointment at `starts_at` now,
    minimum notice aside: who takes over a booked appointment shortly before it starts."""
    end = starts_at + timedelta(seconds=1)
    found = slots_for_mechanics(mechanic_ids, starts_at, end, minutes, now, moving, notice=timedelta(0))
    wanted = Slot(starts_at, starts_at + timedelta(minutes=minutes))
    return [mechanic_id for mechanic_id in dict.fromkeys(mechanic_ids) if wanted in found.get(mechanic_id, [])]


def slots_for_mechanics(mechanic_ids, window_start, window_end, minutes=SLOT_MINUTES, now=None, moving=None,
                        notice=MIN_NOTICE):
    """{mechanic id: [Slot, ...]} for many mechanics in five queries, whatever their number."""
    now = now or clock.now()
    ids = list(dict.fromkeys(mechanic_ids))
    if not ids:
        return {}
    profiles = {p.user_id: p for p in db.session.execute(db.select(
        MechanicProfile.user_id, MechanicProfile.time_zone, MechanicProfile.buffer_minutes,
        MechanicProfile.daily_cap, MechanicProfile.booking_window_days).where(MechanicProfile.user_id.in_(ids)))}
    # Local days can start up to 14 hours either side of UTC midnight: read one day more each way.
    first_day, last_day = window_start.date() - timedelta(days=1), window_end.date() + timedelta(days=1)
    weekly = _grouped(db.session.execute(db.select(
        WeeklyHours.mechanic_id, WeeklyHours.weekday, WeeklyHours.start_minute, WeeklyHours.end_minute)
        .where(WeeklyHours.mechanic_id.in_(ids))), lambda r: r.weekday)
    overrides = _grouped(db.session.execute(db.select(
        DateOverride.mechanic_id, DateOverride.day, DateOverride.start_minute, DateOverride.end_minute)
        .where(DateOverride.mechanic_id.in_(ids), DateOverride.day.between(first_day, last_day))),
        lambda r: r.day)
    reach = timedelta(days=2)  # covers the buffer and whole local days for the daily cap
    away = _grouped(db.session.execute(db.select(TimeOff.mechanic_id, TimeOff.starts_at, TimeOff.ends_at).where(
        TimeOff.mechanic_id.in_(ids), TimeOff.ends_at > window_start - reach,
        TimeOff.starts_at < window_end + reach)))
    booked = _grouped(db.session.execute(db.select(
        Appointment.mechanic_id, Appointment.starts_at, Appointment.ends_at).where(
        Appointment.mechanic_id.in_(ids), Appointment.ends_at > window_start - reach,
        Appointment.starts_at < window_end + reach, _holding(now), Appointment.id != (moving or 0))))
    return {mechanic_id: _free_slots(profiles[mechanic_id], overrides.get(mechanic_id, {}),
                                     weekly.get(mechanic_id, {}), away.get(mechanic_id, []),
                                     booked.get(mechanic_id, []), window_start, window_end,
                                     timedelta(minutes=minutes), now, notice)
            for mechanic_id in ids if mechanic_id in profiles}


def _holding(now):
    """Appointments that keep the mechanic's time: booked ones, and holds not yet expired."""
    return (Appointment.status == "booked") | (
        (Appointment.status == "held") & (Appointment.hold_expires_at > now))


def _grouped(rows, key=None):
    """Rows by mechanic id, and then by `key(row)` when given."""
    groups = defaultdict(lambda: defaultdict(list)) if key else defaultdict(list)
    for row in rows:
        if key:
            groups[row.mechanic_id][key(row)].append(row)
        else:
            groups[row.mechanic_id].append(row)
    return groups


def _free_slots(profile, overrides, weekly, away, booked, window_start, window_end, length, now, notice):
    zone = ZoneInfo(profile.time_zone)
    start = max(window_start, now + notice)
    end = min(window_end, now + timedelta(days=profile.booking_window_days))
    if start >= end:
        return []
    buffer = timedelta(minutes=profile.buffer_minutes)
    busy = sorted([(r.starts_at, r.ends_at) for r in away] +
                  [(r.starts_at - buffer, r.ends_at + buffer) for r in booked])
    per_day = defaultdict(int)
    for r in booked:
        per_day[local(r.starts_at, zone).date()] += 1
    found = []
    day, last_day = local(start, zone).date(), local(end, zone).date()
    while day <= last_day:
        ranges = _ranges(day, overrides, weekly)
        if ranges and (profile.daily_cap is None or per_day[day] < profile.daily_cap):
            instant = _wall_clock(day, zone)
            day_busy = [b for b in busy if b[1] > instant(0) and b[0] < instant(24 * 60) + length]
            for lo, hi in ranges:
                range_end = instant(hi, strict=False)
                for minute in range(lo + (-lo % SLOT_MINUTES), hi, SLOT_MINUTES):
                    slot_start = instant(minute)
                    if slot_start is None or not start <= slot_start < end:
                        continue
                    slot_end = slot_start + length
                    if slot_end <= range_end and not any(
                            slot_start < b_end and b_start < slot_end for b_start, b_end in day_busy):
                        found.append(Slot(slot_start, slot_end))
        day += timedelta(days=1)
    return sorted(set(found))


def _ranges(day, overrides, weekly):
    """The day's working ranges in minutes: its override if it has one (no range = day off)."""
    rows = overrides[day] if day in overrides else weekly.get(day.weekday(), [])
    return sorted((r.start_minute, r.end_minute) for r in rows if r.start_minute is not None)


def _wall_clock(day, zone):
    """minute after local midnight of `day` -> naive-UTC instant. On most days one UTC offset
    holds from midnight to midnight and the instant is a subtraction; on the day of a
    daylight-saving change each wall time is converted on its own: one skipped by the change
    gives None (or, not `strict`, the instant an hour later)."""
    midnight = datetime.combine(day, time())
    first = midnight.replace(tzinfo=zone).utcoffset()
    last = (midnight + timedelta(days=1)).replace(tzinfo=zone).utcoffset()
    if first == last:
        base = midnight - first
        return lambda minute, strict=True: base + timedelta(minutes=minute)

    def convert(minute, strict=True):
        wall = midnight + timedelta(minutes=minute)
        utc = wall.replace(tzinfo=zone).astimezone(UTC)
        if strict and utc.astimezone(zone).replace(tzinfo=None) != wall:
            return None
        return utc.replace(tzinfo=None)

    return convert


def local(instant, zone):
    """A naive-UTC instant as an aware datetime in `zone` (a ZoneInfo or an IANA name)."""
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    return instant.replace(tzinfo=UTC).astimezone(zone)


def day_window(day: date, zone):
    """[start, end) in naive UTC of a whole local `day` in `zone`: what a customer means by
    "Tuesday" on their calendar."""
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    start = datetime.combine(day, time(), tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
    return start, end
