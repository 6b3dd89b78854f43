from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, MultipleFileField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

COUNTRIES = [("", "Choose…"), ("CA", "Canada"), ("US", "United States"), ("GB", "United Kingdom"),
             ("IE", "Ireland"), ("AU", "Australia"), ("NZ", "New Zealand"), ("IN", "India"),
             ("DE", "Germany"), ("FR", "France"), ("MX", "Mexico")]


class IntakeForm(FlaskForm):
    """Field-level rules live in services.intakes; this form only parses."""

    # Checked by services.plans.get_plan, whose message names the problem.
    plan = SelectField("Plan", validators=[DataRequired("Choose a plan.")], validate_choice=False)
    advice_only = BooleanField("Just advice — no specific vehicle")
    year = IntegerField("Year", validators=[Optional()])
    make = StringField("Make", validators=[Length(max=60)])
    model = StringField("Model", validators=[Length(max=60)])
    vin = StringField("VIN (optional)", validators=[Length(max=20)])
    concern = TextAreaField("What is going on?", validators=[Length(max=4000)])
    city = StringField("City", validators=[Length(max=80)])
    country = SelectField("Country", choices=COUNTRIES)
    photos = MultipleFileField("Photos (optional)")
    accept_waiver = BooleanField("I have read and accept the waiver")


class TestCardForm(FlaskForm):
    card_number = StringField("Card number", validators=[DataRequired("Enter a card number.")])
