"""The broker fans a message out to every subscriber of its channel, in-process and
across processes through Redis."""
import time

from autodoctor.realtime import LocalBroker, Message, RedisBroker, sse_format
from tests.conftest import REDIS_TEST_URL, require_services


def test_local_broker_delivers_to_channel_subscribers_only():
    broker = LocalBroker()
    a, b = broker.subscribe(["mechanics"]), broker.subscribe(["user:1"])
    broker.publish(Message("mechanics", "requests", "<p>x</p>", "7"))
    assert a.get(timeout=1).data == "<p>x</p>"
    assert b.get(timeout=0.05) is None
    a.close()
    broker.publish(Message("mechanics", "requests", "y"))
    assert broker.subscriber_count() == 1


def test_redis_broker_crosses_processes():
    require_services()
    sender, receiver = RedisBroker(REDIS_TEST_URL), RedisBroker(REDIS_TEST_URL)
    sub = receiver.subscribe(["room:1"])
    started = time.perf_counter()
    sender.publish(Message("room:1", "chat", "<div>hi</div>", "msg-1"))
    message = sub.get(timeout=2)
    assert message == Message("room:1", "chat", "<div>hi</div>", "msg-1")
    assert time.perf_counter() - started < 1
    sub.close()


def test_sse_format_frames_multiline_data_with_id():
    text = sse_format(Message("c", "requests", "<div>\n<p>a</p>\n</div>", "42"))
    assert text == "id: 42\nevent: requests\ndata: <div>\ndata: <p>a</p>\ndata: </div>\n\n"
