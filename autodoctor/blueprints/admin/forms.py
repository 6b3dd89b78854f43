from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from autodoctor.services.lifecycle import EXTEND_MINUTES


class AssignForm(FlaskForm):
    # Not a closed choice list: the menu is a snapshot and a mechanic may have become busy since;
    # the service says why one cannot take the request.
    mechanic_id = IntegerField("Mechanic", validators=[InputRequired("Choose a mechanic.")])


class ExtendForm(FlaskForm):
    minutes = SelectField("More time", coerce=int, choices=[(m, f"+{m} min") for m in EXTEND_MINUTES],
                          validators=[InputRequired("Choose how much more time.")])
    reason = StringField("Reason (optional)", validators=[Optional(), Length(max=300)])


class CancelForm(FlaskForm):
    reason = StringField("Reason", validators=[DataRequired("Give a reason for cancelling."), Length(max=300)])
