"""The worker dyno: builds the app once, runs the periodic sweep in a thread and an RQ
worker with its scheduler (for enqueue_in). Without REDIS_URL it only runs the sweep."""
import logging
import threading

from autodoctor import create_app, jobs
from autodoctor.runner import sweep_loop

log = logging.getLogger("worker")


def main():
    app = create_app()
    interval = app.config["SWEEP_INTERVAL_SECONDS"] or 10
    stop = threading.Event()
    threading.Thread(target=sweep_loop, args=(app, interval, stop), name="sweep", daemon=True).start()
    if not app.config.get("REDIS_URL"):
        log.info("no REDIS_URL: running the sweep only (jobs run inside the web process)")
        stop.wait()
        return
    from rq import SimpleWorker

    # Jobs open their own app context (and database session) on this app, one per job.
    # SimpleWorker runs them in this process: no fork, so pooled connections are never shared.
    jobs.set_worker_app(app)
    queue = jobs.get_queue(app)
    SimpleWorker([queue], connection=queue.connection).work(with_scheduler=True)


if __name__ == "__main__":
    main()
