"""Admin console: the tables (requests, sessions, intakes, customers, mechanics, payments, audit).

Each table has a page (`admin.<name>_index`, GET /admin/<name>) that answers an HTMX request
with only the table fragment, and a CSV export of the same filtered set (`admin.<name>_csv`,
GET /admin/<name>.csv), streamed as it is read."""
from flask import Response, abort, render_template, request, stream_with_context

from autodoctor import clock
from autodoctor.blueprints.admin import bp
from autodoctor.htmx import is_htmx
from autodoctor.services import admin_tables


def _wants_fragment():
    # A boosted link navigates to the whole page; filters, sort links and paging swap the table.
    return is_htmx() and request.headers.get("HX-Boosted") != "true"


def _index_view(spec):
    def index():
        state = admin_tables.parse(spec, request.args)
        page = admin_tables.fetch_page(state)
        template = "admin/tables/_table.html" if _wants_fragment() else "admin/tables/index.html"
        return render_template(template, spec=spec, state=state, page=page)

    return index


def _csv_view(spec):
    def export():
        args = request.args.to_dict()
        args.pop("after", None)  # the export is the whole filtered set, not one page of it
        state = admin_tables.parse(spec, args)
        if state.errors:
            abort(400, " ".join(state.errors))
        response = Response(stream_with_context(admin_tables.csv_chunks(state)), mimetype="text/csv")
        filename = admin_tables.csv_filename(spec, clock.now().date())
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        response.headers["Cache-Control"] = "no-store"
        return response

    return export


for _spec in admin_tables.TABLES.values():
    bp.add_url_rule(f"/{_spec.name}", endpoint=f"{_spec.name}_index", view_func=_index_view(_spec), methods=["GET"])
    bp.add_url_rule(f"/{_spec.name}.csv", endpoint=f"{_spec.name}_csv", view_func=_csv_view(_spec), methods=["GET"])
