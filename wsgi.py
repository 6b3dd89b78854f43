"""WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app`."""
from autodoctor import create_app
from autodoctor.runner import start_embedded_runner

app = create_app()
start_embedded_runner(app)
