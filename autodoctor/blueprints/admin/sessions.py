"""Admin console: sessions."""
from flask import abort, render_template_string

from autodoctor.blueprints.admin import bp
from autodoctor.extensions import db
from autodoctor.models import ConsultSession


@bp.get("/sessions/<int:session_id>")
def session_show(session_id):  # the owner replaces this with the full session detail page
    session = db.session.get(ConsultSession, session_id) or abort(404)
    return render_template_string('{% extends "admin/base.html" %}{% block admin_content %}'
                                  '<h1>Session #{{ s.id }}</h1>{% endblock %}', s=session)
