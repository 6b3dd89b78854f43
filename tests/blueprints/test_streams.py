"""The dashboard and waiting-page streams: a first byte at once, event ids, the current
state from the database on every (re)connect, then live changes."""
import time

from autodoctor.extensions import db
from autodoctor.services import lifecycle
from tests.factories import PaidSessionFactory, UserFactory


def read_events(response, count=None, want=None, seconds=10):
    """Read SSE text until `count` events (not comments) have arrived, or until want(events) is
    true (then failing after `seconds` without it)."""
    buffer, events = "", []
    deadline = time.monotonic() + seconds
    for chunk in response.response:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            if block.startswith(":"):
                continue
            fields = {}
            for line in block.splitlines():
                key, _, value = line.partition(": ")
                fields[key] = fields.get(key, "") + ("\n" if key in fields else "") + value
            events.append(fields)
            if (want(events) if want else len(events) == count):
                return events
        if want and time.monotonic() > deadline:
            break
    if want:
        raise AssertionError(f"not found in {[e.get('event') for e in events]}")
    return events
    return events


def test_dashboard_stream_starts_with_the_open_requests(app, login):
    mechanic = UserFactory("mechanic")
    customer = UserFactory("customer")
    request_id = PaidSessionFactory(customer).current_request.id
    db.session.commit()
    response = login(mechanic).get("/mechanic/stream", buffered=False)
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    first = next(iter(response.response))
    assert first.startswith(b": connected")
    requests_event, active_event = read_events(response, 2)
    response.close()
    assert requests_event["event"] == "requests"
    assert requests_event["id"].isdigit()
    assert f'id="request-{request_id}"' in requests_event["data"]
    assert active_event["event"] == "active"


def test_reconnect_with_last_event_id_replays_what_was_missed(app, login):
    mechanic = UserFactory("mechanic")
    customer, other = UserFactory("customer"), UserFactory("customer")
    first_request = PaidSessionFactory(customer).current_request.id
    other_mechanic = UserFactory("mechanic").id
    db.session.commit()
    client = login(mechanic)
    response = client.get("/mechanic/stream", buffered=False)
    seen = read_events(response, 1)[0]
    response.close()
    # While the dashboard is offline one request is taken and another arrives.
    lifecycle.accept_request(first_request, other_mechanic)
    missed_request = PaidSessionFactory(other).current_request.id
    db.session.commit()
    response = client.get("/mechanic/stream", headers={"Last-Event-ID": seen["id"]}, buffered=False)
    replay = read_events(response, 1)[0]
    response.close()
    assert int(replay["id"]) > int(seen["id"])
    assert f'id="request-{missed_request}"' in replay["data"]
    assert f'id="request-{first_request}"' not in replay["data"]


def test_live_change_reaches_an_open_dashboard_stream(app, login):
    mechanic = UserFactory("mechanic")
    customer = UserFactory("customer")
    db.session.commit()
    response = login(mechanic).get("/mechanic/stream", buffered=False)
    snapshot = read_events(response, 3)  # the general list, the active session, the mechanic's own offers
    assert "No open requests" in snapshot[0]["data"] and snapshot[2]["event"] == "offers"
    request_id = PaidSessionFactory(customer).current_request.id
    db.session.commit()
    pushed = read_events(response, 1)[0]
    response.close()
    assert pushed["event"] == "requests"
    assert f'id="request-{request_id}"' in pushed["data"]


def test_waiting_page_stream_shows_acceptance(app, login):
    customer = UserFactory("customer")
    mechanic = UserFactory("mechanic", full_name="Mia Wrench")
    session = PaidSessionFactory(customer)
    session_id, request_id, mechanic_id = session.id, session.current_request.id, mechanic.id
    db.session.commit()
    response = login(customer).get(f"/customer/sessions/{session_id}/stream", buffered=False)
    initial = read_events(response, 1)[0]
    assert "Finding your mechanic" in initial["data"]
    lifecycle.accept_request(request_id, mechanic_id)
    db.session.commit()
    update = read_events(response, 1)[0]
    response.close()
    assert "Mia Wrench accepted your request" in update["data"]
    assert f'data-redirect="/room/{session_id}"' in update["data"]
