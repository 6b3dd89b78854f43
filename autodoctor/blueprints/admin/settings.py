"""Admin console: plans and the platform fee. Changes apply to new sessions only."""
from flask import flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, StopValidation

from autodoctor.blueprints.admin import bp
from autodoctor.blueprints.admin.common import actor
from autodoctor.extensions import db
from autodoctor.models import Plan
from autodoctor.services import fees, plan_admin
from autodoctor.services.errors import ServiceError

M = plan_admin.MESSAGES
FIELD_LABELS = {"name": "Name", "price_cents": "Price", "minutes": "Minutes",
                "extension_price_cents": "+15 min price", "max_photos": "Max photos", "active": "Active",
                "platform_percent": "Platform fee"}
FORM_FIELDS = {"price_cents": "price", "extension_price_cents": "extension_price"}  # service field → form field


class _StopOnParseError:
    """A value that did not parse has said what is wrong; the range checks would only repeat it."""

    def pre_validate(self, form):
        if self.process_errors:
            raise StopValidation()


class DollarsField(_StopOnParseError, StringField):
    """An amount typed in dollars ("29.99"); `data` is cents, None when left empty."""

    def process_formdata(self, valuelist):
        text = valuelist[0] if valuelist else ""
        self.data = None
        if text.strip():
            self.data = plan_admin.parse_dollars(text)  # its ValueError becomes the field's error

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return "" if self.data is None else f"{self.data // 100}.{self.data % 100:02d}"


class WholeNumberField(_StopOnParseError, IntegerField):
    """An integer field whose "not a number" error says what is expected."""

    def __init__(self, label=None, validators=None, invalid=None, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.invalid = invalid

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(self.invalid) from None


class PlanForm(FlaskForm):
    name = StringField("Name", filters=[lambda s: s.strip() if s else s], validators=[
        InputRequired("Give the plan a name."),
        Length(plan_admin.NAME_MIN, plan_admin.NAME_MAX, message=M["name"])])
    price = DollarsField("Price (dollars)", validators=[
        InputRequired("Enter the price in dollars, like 29.99 (0 for a free plan).")])
    minutes = WholeNumberField("Minutes", invalid=M["minutes"], validators=[
        InputRequired(M["minutes"]), NumberRange(plan_admin.MINUTES_MIN, plan_admin.MINUTES_MAX, M["minutes"])])
    extension_price = DollarsField("+15 minutes price (dollars)", validators=[
        Optional(), NumberRange(min=1, message=M["extension_price_cents"])])
    max_photos = WholeNumberField("Max photos", invalid=M["max_photos"], validators=[
        InputRequired(M["max_photos"]), NumberRange(plan_admin.PHOTOS_MIN, plan_admin.PHOTOS_MAX, M["max_photos"])])
    active = BooleanField("Offered to customers (active)")
    reason = TextAreaField("Reason for the change", validators=[
        DataRequired("Say why the plan changes (kept in its history)."),
        Length(max=plan_admin.REASON_MAX, message=f"Keep the reason under {plan_admin.REASON_MAX} characters.")])

    def values(self):
        return {"name": self.name.data, "price_cents": self.price.data, "minutes": self.minutes.data,
                "extension_price_cents": self.extension_price.data, "max_photos": self.max_photos.data,
                "active": bool(self.active.data)}


class FeeRuleForm(FlaskForm):
    percent = WholeNumberField("New platform fee (%)", invalid=fees.PERCENT_MESSAGE, validators=[
        InputRequired(fees.PERCENT_MESSAGE), NumberRange(fees.MIN_PERCENT, fees.MAX_PERCENT, fees.PERCENT_MESSAGE)])
    note = StringField("Note (why)", validators=[
        DataRequired("Say why the fee changes (kept in the history)."),
        Length(max=fees.NOTE_MAX, message=f"Keep the note under {fees.NOTE_MAX} characters.")])


def _display(field, value):
    if value is None:
        return "not extendable" if field == "extension_price_cents" else "—"
    if field in ("price_cents", "extension_price_cents"):
        return f"${value // 100}.{value % 100:02d}"
    if field == "active":
        return "yes" if value else "no"
    if field == "platform_percent":
        return f"{value}%"
    return str(value)


def change_rows(entry):
    """[(label, before, after)] of an audit entry, in words."""
    before, after = entry.before or {}, entry.after or {}
    return [(FIELD_LABELS.get(f, f), _display(f, before.get(f)), _display(f, after.get(f))) for f in after]


def _plans_page(fee_form, status=200):
    rules = fees.history()
    return render_template("admin/settings/index.html", plans=plan_admin.all_plans(), fee_form=fee_form,
                           current_percent=fees.current_percent(), default_percent=fees.default_percent(),
                           rules=rules), status


@bp.get("/plans")
def plans_index():
    return _plans_page(FeeRuleForm(formdata=None))


@bp.post("/fee-rules")
def fee_rule_create():
    form = FeeRuleForm()
    if not form.validate_on_submit():
        return _plans_page(form, 422)
    try:
        rule = fees.set_rule(form.percent.data, form.note.data, actor())
    except ServiceError as exc:
        db.session.rollback()
        getattr(form, exc.field if exc.field in form else "percent").errors.append(exc.message)
        return _plans_page(form, exc.status_code)
    db.session.commit()
    flash(f"The platform fee is now {rule.platform_percent}% for new sessions; existing sessions keep theirs.",
          "success")
    return redirect(url_for("admin.plans_index"), code=303)


def _edit_page(plan, form, status=200):
    return render_template("admin/settings/edit.html", plan=plan, form=form, history=plan_admin.history(plan.id),
                           change_rows=change_rows), status


@bp.get("/plans/<int:plan_id>/edit")
def plan_edit(plan_id):
    plan = db.get_or_404(Plan, plan_id)
    form = PlanForm(formdata=None, name=plan.name, price=plan.price_cents, minutes=plan.minutes,
                    extension_price=plan.extension_price_cents, max_photos=plan.max_photos, active=plan.active)
    return _edit_page(plan, form)


@bp.post("/plans/<int:plan_id>/edit")
def plan_update(plan_id):
    plan = db.get_or_404(Plan, plan_id)
    form = PlanForm()
    if not form.validate_on_submit():
        return _edit_page(plan, form, 422)
    try:
        entry = plan_admin.update_plan(plan_id, form.values(), actor(), form.reason.data)
    except ServiceError as exc:
        db.session.rollback()
        field = FORM_FIELDS.get(exc.field, exc.field)
        getattr(form, field if field in form else "reason").errors.append(exc.message)
        return _edit_page(db.get_or_404(Plan, plan_id), form, exc.status_code)
    if entry is None:
        flash("Nothing changed: the values are the ones the plan already has.", "info")
        return redirect(url_for("admin.plan_edit", plan_id=plan_id), code=303)
    db.session.commit()
    flash(f"{plan.name} saved. The change applies to new sessions only.", "success")
    return redirect(url_for("admin.plans_index"), code=303)
