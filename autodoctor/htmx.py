"""All HTMX header logic: page-or-fragment rendering, HX-* response headers, Vary."""
from flask import make_response, render_template, request


def is_htmx():
    return request.headers.get("HX-Request") == "true" and not request.headers.get("HX-History-Restore-Request")


def render(page, fragment=None, status=200, **context):
    """The full page, or only `fragment` for an HTMX request."""
    template = fragment if fragment and is_htmx() else page
    return make_response(render_template(template, **context), status)


def redirect(url):
    """Client-side redirect for HTMX requests, normal 303 otherwise."""
    from flask import redirect as flask_redirect

    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return flask_redirect(url, code=303)


def init_htmx(app):
    @app.after_request
    def vary_on_hx_request(response):
        response.vary.add("HX-Request")
        return response
