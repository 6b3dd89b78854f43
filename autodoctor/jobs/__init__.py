"""Job dispatch. With Redis (and not SINGLE_DYNO) jobs go to RQ: `enqueue` for now,
`enqueue_in` for timeouts, run by `python worker.py`. Embedded, immediate jobs run in
this process right after the commit and timeouts are left to the periodic sweep
(autodoctor.services.sweep), which applies every overdue transition anyway."""
from datetime import timedelta

from flask import current_app

from autodoctor.extensions import after_commit

QUEUE_NAME = "autodoctor"


def uses_rq(app=None):
    app = app or current_app
    return bool(app.config.get("REDIS_URL")) and not app.config.get("SINGLE_DYNO")


def get_queue(app=None):
    app = app or current_app
    queue = app.extensions.get("rq_queue")
    if queue is None:
        import redis
        from rq import Queue

        queue = Queue(QUEUE_NAME, connection=redis.Redis.from_url(app.config["REDIS_URL"]))
        app.extensions["rq_queue"] = queue
    return queue


def enqueue(func, *args):
    """Run func(*args) after the current transaction commits: on a worker, or inline."""
    app = current_app._get_current_object()

    def run():
        if uses_rq(app):
            get_queue(app).enqueue(func, *args, job_timeout=120)
        else:
            with app.app_context():
                func(*args)

    after_commit(run)


def schedule(delay: timedelta, func, *args):
    """Run func(*args) after `delay` (RQ scheduler). Embedded mode relies on the sweep."""
    app = current_app._get_current_object()
    if uses_rq(app):
        after_commit(lambda: get_queue(app).enqueue_in(delay, func, *args, job_timeout=120))


def app_context(fn):
    """Give a job an app context: reuse the current one (inline) or build the app once per
    worker process (RQ)."""
    import functools

    from flask import has_app_context

    @functools.wraps(fn)
    def wrapper(*args):
        if has_app_context():
            return fn(*args)
        from autodoctor import create_app

        global _worker_app
        if _worker_app is None:
            _worker_app = create_app()
        with _worker_app.app_context():
            return fn(*args)

    return wrapper


_worker_app = None


def set_worker_app(app):
    global _worker_app
    _worker_app = app
