from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.validators import DataRequired


class AssignForm(FlaskForm):
    mechanic_id = SelectField("Mechanic", coerce=int, validators=[DataRequired("Choose a mechanic.")])
