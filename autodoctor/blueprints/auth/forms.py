from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from autodoctor.services.accounts import MIN_PASSWORD


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired("Enter your e-mail.")])
    password = PasswordField("Password", validators=[DataRequired("Enter your password.")])


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class SignupForm(FlaskForm):
    full_name = StringField("Your name", filters=[_strip],
                            validators=[DataRequired("Enter your name."), Length(max=120)])
    email = EmailField("E-mail", filters=[_strip], validators=[
        DataRequired("Enter your e-mail."), Email("Enter a valid e-mail."), Length(max=254)])
    password = PasswordField("Password", validators=[
        DataRequired("Choose a password."),
        Length(min=MIN_PASSWORD, max=200, message=f"Use at least {MIN_PASSWORD} characters.")])
    confirm = PasswordField("Repeat password", validators=[EqualTo("password", "The passwords do not match.")])


class ForgotPasswordForm(FlaskForm):
    email = EmailField("E-mail", filters=[_strip], validators=[
        DataRequired("Enter your e-mail."), Email("Enter a valid e-mail."), Length(max=254)])


class ResetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[
        DataRequired("Choose a password."),
        Length(min=MIN_PASSWORD, max=200, message=f"Use at least {MIN_PASSWORD} characters.")])
    confirm = PasswordField("Repeat new password", validators=[
        DataRequired("Repeat the password."), EqualTo("password", "The passwords do not match.")])
