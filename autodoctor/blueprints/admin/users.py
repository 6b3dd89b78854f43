"""Admin console: users."""
from flask import abort, render_template_string

from autodoctor.blueprints.admin import bp
from autodoctor.extensions import db
from autodoctor.models import User


@bp.get("/users/<int:user_id>")
def user_show(user_id):  # the owner replaces this with the full user page
    user = db.session.get(User, user_id) or abort(404)
    return render_template_string('{% extends "admin/base.html" %}{% block admin_content %}'
                                  '<h1>{{ u.full_name }}</h1>{% endblock %}', u=user)
