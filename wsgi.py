"""WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app`."""
import gc

from autodoctor import create_app
from autodoctor.runner import start_embedded_runner

app = create_app()
start_embedded_runner(app)

# Everything imported so far (Flask, SQLAlchemy, stripe, ...) lives as long as the process.
# Left in the collector's view, each full collection walked it all: 90-370 ms during which a
# gevent worker serves none of its streams and sockets. Frozen, a full collection takes 10-45 ms.
gc.collect()
gc.freeze()
