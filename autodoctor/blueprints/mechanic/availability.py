"""The mechanic's availability editor: one page, four parts (weekly hours, date overrides,
time off, settings), each saved on its own by an HTMX post that answers with its fragment."""
from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from autodoctor import htmx
from autodoctor.blueprints.mechanic import bp
from autodoctor.extensions import db
from autodoctor.services import working_hours
from autodoctor.services.errors import ServiceError, ValidationError

PAGE = "mechanic/availability/index.html"
FRAGMENTS = {part: f"mechanic/availability/_{part}.html" for part in ("weekly", "overrides", "time_off", "settings")}


def _parts(mechanic_id, **given):
    """The context of every part, from the database unless `given` (after a failed save the
    part shows what was submitted, with its errors)."""
    state = working_hours.editor_state(mechanic_id)
    parts = {
        "weekly": {"week": state.week},
        "overrides": {"overrides": state.overrides, "form": {"day": "", "day_off": False, "ranges": [("", "")]},
                      "today": state.today},
        "time_off": {"time_off": state.time_off, "form": {"starts_at": "", "ends_at": "", "reason": ""},
                     "time_zone": state.time_zone},
        "settings": {"form": {"time_zone": state.time_zone, "buffer_minutes": state.buffer_minutes,
                              "daily_cap": state.daily_cap or "", "booking_window_days": state.booking_window_days},
                     "zone_groups": working_hours.zone_groups()},
    }
    for name, part in parts.items():
        part.update({"errors": {}, "notice": None, "problem": None})
        part.update(given.get(name, {}))
    return parts


def _answer(part, status=200, notice=None, **given):
    """The part's fragment (HTMX) or the whole page. A plain form post that saved goes back
    to the page with a flash message."""
    if status < 400 and not htmx.is_htmx():
        flash(notice, "success")
        return redirect(url_for("mechanic.availability_index"), code=303)
    if notice:
        given.setdefault(part, {})["notice"] = notice
    return htmx.render(PAGE, FRAGMENTS[part], status=status, **_parts(current_user.id, **given))


def _failed(part, exc, **submitted):
    db.session.rollback()
    errors = getattr(exc, "errors", None) or {}
    problem = exc.message if not errors else "Not saved. Check the fields marked below."
    return _answer(part, status=exc.status_code, **{part: {"errors": errors, "problem": problem, **submitted}})


def _pairs(starts, ends):
    count = max(len(starts), len(ends))
    starts, ends = starts + [""] * (count - len(starts)), ends + [""] * (count - len(ends))
    return list(zip(starts, ends, strict=True))


@bp.get("/availability")
def availability_index():
    return htmx.render(PAGE, **_parts(current_user.id))


@bp.post("/availability/weekly")
def weekly_update():
    week = {}
    for weekday in range(7):
        pairs = _pairs(request.form.getlist(f"day-{weekday}-start"), request.form.getlist(f"day-{weekday}-end"))
        week[weekday] = pairs if request.form.get(f"day-{weekday}-on") else []
    try:
        working_hours.replace_week(current_user.id, week)
    except ServiceError as exc:
        submitted = [working_hours.Day(n, name, [p for p in week[n] if any(p)]) for n, name in
                     enumerate(working_hours.WEEKDAYS)]
        for day in submitted:
            day.error = getattr(exc, "errors", {}).get(f"weekday-{day.weekday}")
        return _failed("weekly", exc, week=submitted)
    db.session.commit()
    return _answer("weekly", notice="Weekly hours saved.")


@bp.post("/availability/overrides")
def override_create():
    form = {"day": request.form.get("day", ""), "day_off": bool(request.form.get("day_off")),
            "ranges": _pairs(request.form.getlist("start"), request.form.getlist("end"))}
    try:
        override = working_hours.set_override(current_user.id, form["day"], form["ranges"], form["day_off"])
    except ServiceError as exc:
        form["ranges"] = [p for p in form["ranges"] if any(p)] or [("", "")]
        return _failed("overrides", exc, form=form)
    db.session.commit()
    what = "a day off" if override.day_off else "special hours"
    return _answer("overrides", notice=f"{override.day:%A, %B} {override.day.day} is now {what}.")


@bp.post("/availability/overrides/delete")
def override_delete():
    try:
        day = working_hours.clear_override(current_user.id, request.form.get("day", ""))
    except ServiceError as exc:
        return _failed("overrides", exc)
    db.session.commit()
    return _answer("overrides", notice=f"{day:%A, %B} {day.day} is back to your weekly hours.")


@bp.post("/availability/time-off")
def time_off_create():
    form = {key: request.form.get(key, "") for key in ("starts_at", "ends_at", "reason")}
    try:
        working_hours.add_time_off(current_user.id, form["starts_at"], form["ends_at"], form["reason"])
    except ServiceError as exc:
        return _failed("time_off", exc, form=form)
    db.session.commit()
    return _answer("time_off", notice="Time off added. Customers cannot book you then.")


@bp.post("/availability/time-off/delete")
def time_off_delete():
    time_off_id = request.form.get("time_off_id", type=int)
    try:
        if time_off_id is None:
            raise ValidationError("Choose the time off to remove.")
        working_hours.delete_time_off(current_user.id, time_off_id)
    except ServiceError as exc:
        return _failed("time_off", exc)
    db.session.commit()
    return _answer("time_off", notice="Time off removed.")


@bp.post("/availability/settings")
def settings_update():
    form = {key: request.form.get(key, "") for key in ("time_zone", "buffer_minutes", "daily_cap",
                                                       "booking_window_days")}
    previous_zone = working_hours.editor_state(current_user.id).time_zone
    try:
        profile = working_hours.update_settings(current_user.id, **form)
    except ServiceError as exc:
        return _failed("settings", exc, form=form)
    db.session.commit()
    notice = "Settings saved."
    if profile.time_zone != previous_zone:
        notice = (f"Settings saved. Your weekly hours now count in {profile.time_zone}; "
                  "time off keeps its moments and is shown in the new zone.")
    response = _answer("settings", notice=notice)
    if htmx.is_htmx() and profile.time_zone != previous_zone:
        # The time off list is shown in local time: refresh it out of band.
        parts = _parts(current_user.id)
        response.set_data(response.get_data(as_text=True)
                          + render_template(FRAGMENTS["time_off"], oob=True, **parts))
    return response
