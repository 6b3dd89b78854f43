"""Forms of a mechanic's application: the sign-up with credentials, and new documents after a
rejection (the mechanic dashboard). Field rules for the documents live in services.applications."""
from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    FileField,
    IntegerField,
    MultipleFileField,
    PasswordField,
    RadioField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, EqualTo, InputRequired, Length, NumberRange, Optional, Regexp

from autodoctor.services.accounts import MIN_PASSWORD


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _upper(value):
    return value.strip().upper() if isinstance(value, str) else value


class DocumentsForm(FlaskForm):
    """New documents for an application that was not approved: at least one (checked by the service)."""

    certificate = FileField("Trade certificate")
    insurance = FileField("Insurance document")
    others = MultipleFileField("Other documents (optional)")


class MechanicApplicationForm(FlaskForm):
    full_name = StringField("Your full name", filters=[_strip],
                            validators=[DataRequired("Enter your name."), Length(max=120)])
    email = EmailField("E-mail", filters=[_strip], validators=[
        DataRequired("Enter your e-mail."), Email("Enter a valid e-mail."), Length(max=254)])
    password = PasswordField("Password", validators=[
        DataRequired("Choose a password."),
        Length(min=MIN_PASSWORD, max=200, message=f"Use at least {MIN_PASSWORD} characters.")])
    confirm = PasswordField("Repeat password", validators=[EqualTo("password", "The passwords do not match.")])
    city = StringField("City", filters=[_strip], validators=[DataRequired("Enter the city you work in."),
                                                             Length(max=80)])
    country = StringField("Country (2-letter code)", filters=[_upper], validators=[
        DataRequired("Enter your country's 2-letter code, e.g. CA."),
        Regexp(r"^[A-Z]{2}$", message="Use the 2-letter country code, e.g. CA or US.")])
    years_experience = IntegerField("Years of experience", validators=[
        InputRequired("Enter your years of experience (0 if you are starting out)."),
        NumberRange(0, 60, "Enter a number of years between 0 and 60.")])
    red_seal = RadioField("Red Seal endorsement", choices=[("yes", "Yes"), ("no", "No")],
                          validators=[InputRequired("Tell us whether you hold a Red Seal endorsement.")])
    specialties = StringField("Specialties", filters=[_strip], validators=[Optional(), Length(max=255)])
    brands = StringField("Brands you know best", filters=[_strip], validators=[Optional(), Length(max=255)])
    bio = TextAreaField("A short bio", filters=[_strip], validators=[Optional(), Length(max=1000)])
    certificate = FileField("Trade certificate (required)")
    insurance = FileField("Insurance document (required)")
    others = MultipleFileField("Other documents (optional)")
