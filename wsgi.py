"""WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app`."""
import gc

from autodoctor import create_app
from autodoctor.runner import start_embedded_runner

app = create_app()
start_embedded_runner(app)

# WeasyPrint (report PDFs) takes ~1.7 s to import, which would stall the first PDF request's
# worker and all its streams; imported here, before the fork, its ~40 MB are shared.
import weasyprint  # noqa: E402,F401

# Everything imported so far (Flask, SQLAlchemy, stripe, ...) lives as long as the process.
# Left in the collector's view, each full collection walked it all: 90-370 ms during which a
# gevent worker serves none of its streams and sockets. Frozen, a full collection takes 10-45 ms.
gc.collect()
gc.freeze()
