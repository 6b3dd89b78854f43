"""gunicorn settings. gevent workers hold thousands of SSE streams and websockets in a few OS
threads, so long-lived connections never starve normal requests."""
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "2000"))
timeout = 60
graceful_timeout = 20  # under the router's 30 s: a deploy never hangs on open streams
keepalive = 75
accesslog = "-" if os.environ.get("ACCESS_LOG") == "1" else None
control_socket_disable = True  # several servers (tests, bench) may run side by side
# "Schedule for later instead" carries what was typed on the book-now page in the query string.
limit_request_line = 8190  # gunicorn's maximum (default 4094)
