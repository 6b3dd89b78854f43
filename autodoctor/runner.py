"""In-process periodic sweep for embedded and single-dyno mode. (With Redis and a separate
worker dyno, worker.py runs the sweep instead.)"""
import logging
import threading

from autodoctor import jobs

log = logging.getLogger(__name__)
_started = False


def sweep_loop(app, interval, stop=None):
    from autodoctor.services import sweep

    stop = stop or threading.Event()
    while not stop.wait(interval):
        try:
            with app.app_context():
                sweep.run_sweep()
        except Exception:  # keep sweeping; the next pass retries whatever failed
            log.exception("sweep pass failed")


def start_embedded_runner(app):
    """Start the sweep thread in this process when no separate worker runs jobs."""
    global _started
    interval = app.config.get("SWEEP_INTERVAL_SECONDS", 0)
    if _started or not interval or jobs.uses_rq(app):
        return
    _started = True
    threading.Thread(target=sweep_loop, args=(app, interval), name="sweep", daemon=True).start()
    log.info("in-process sweep every %ss", interval)
