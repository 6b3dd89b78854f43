"""Building URLs where there may be no request (jobs, services called from the sweep)."""
from flask import current_app, has_request_context, url_for


def url(endpoint, **values):
    """url_for that also works outside a request, relative to PUBLIC_URL."""
    if has_request_context():
        return url_for(endpoint, **values)
    with current_app.test_request_context(base_url=current_app.config["PUBLIC_URL"]):
        return url_for(endpoint, **values)
