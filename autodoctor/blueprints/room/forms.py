from flask_wtf import FlaskForm
from wtforms import RadioField, TextAreaField
from wtforms.validators import DataRequired, Length


class EndSessionForm(FlaskForm):
    notes = TextAreaField("Notes for the customer", validators=[
        DataRequired("Write a few notes for the customer before ending the session."),
        Length(max=5000, message="Notes are limited to 5,000 characters.")])


class RatingForm(FlaskForm):
    rating = RadioField("Rating", choices=[(str(n), str(n)) for n in range(5, 0, -1)],
                        validators=[DataRequired("Choose a rating from 1 to 5 stars.")])
    review = TextAreaField("Review (optional)", validators=[Length(max=2000, message="Reviews are limited to 2,000 characters.")])
