"""With Redis, entering a state schedules its timeout on RQ (enqueue_in), and a real RQ
worker with its scheduler applies it."""
import time
from datetime import timedelta

import pytest
import redis
from rq import SimpleWorker

from autodoctor import clock, jobs
from autodoctor.extensions import db
from autodoctor.jobs.lifecycle import mark_unattended_job
from autodoctor.models import SessionRequest
from autodoctor.services import lifecycle
from tests.conftest import REDIS_TEST_URL, require_services
from tests.factories import PaidSessionFactory, UserFactory

# Not the live server's Redis database: its worker (scheduler included) would take these jobs.
RQ_TEST_URL = REDIS_TEST_URL.rsplit("/", 1)[0] + "/8"


@pytest.fixture
def rq_app(pg_app):
    require_services()
    redis.Redis.from_url(RQ_TEST_URL).flushdb()
    pg_app.config["REDIS_URL"] = RQ_TEST_URL
    pg_app.extensions.pop("rq_queue", None)
    yield pg_app
    pg_app.config["REDIS_URL"] = ""
    pg_app.extensions.pop("rq_queue", None)


def scheduled(queue):
    registry = queue.scheduled_job_registry
    return {queue.fetch_job(job_id).func_name: registry.get_scheduled_time(job_id)
            for job_id in registry.get_job_ids()}


def test_paid_request_schedules_unattended_and_expiry_timeouts(rq_app):
    before = clock.now()
    PaidSessionFactory(UserFactory("customer"))
    db.session.commit()
    times = scheduled(jobs.get_queue())
    unattended = times["autodoctor.jobs.lifecycle.mark_unattended_job"].replace(tzinfo=None)
    expire = times["autodoctor.jobs.lifecycle.expire_request_job"].replace(tzinfo=None)
    assert timedelta(minutes=5) - timedelta(seconds=5) <= unattended - before <= timedelta(minutes=5, seconds=5)
    assert timedelta(hours=2) - timedelta(seconds=5) <= expire - before <= timedelta(hours=2, seconds=5)


def test_accept_schedules_no_show_and_orphan_checks(rq_app):
    session = PaidSessionFactory(UserFactory("customer"))
    mechanic = UserFactory("mechanic")
    db.session.commit()
    lifecycle.accept_request(session.current_request.id, mechanic.id)
    db.session.commit()
    names = set(scheduled(jobs.get_queue()))
    assert {"autodoctor.jobs.lifecycle.cancel_no_show_job", "autodoctor.jobs.lifecycle.cancel_orphaned_job"} <= names


def test_rq_worker_with_scheduler_applies_a_due_timeout(rq_app):
    session = PaidSessionFactory(UserFactory("customer"))
    request_id = session.current_request.id
    db.session.commit()
    # The request was created six minutes ago; its timeout job comes due in a second.
    db.session.execute(db.update(SessionRequest).where(SessionRequest.id == request_id)
                       .values(created_at=clock.now() - timedelta(minutes=6)))
    db.session.commit()
    queue = jobs.get_queue()
    queue.enqueue_in(timedelta(seconds=1), mark_unattended_job, request_id)
    time.sleep(1.5)
    SimpleWorker([queue], connection=queue.connection).work(burst=True, with_scheduler=True)
    db.session.expire_all()
    assert db.session.get(SessionRequest, request_id).status == "unattended"
