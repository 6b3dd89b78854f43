"""Live presence badges: the `presence` channel carries one mechanic's badge
(shared/_presence_badge.html, swapped out of band by id) whenever their presence changes or
a session makes them busy or free again. Pages that show badges include
shared/_presence_stream.html, which listens here.

Snapshot on (re)connect: the current badges of the mechanics named in `?ids=` (the page's
badges, filled in by static/js/presence-1.js; at most 200, anything else ignored); without
ids, nothing — the page rendered its badges itself moments before."""
from flask import render_template, request
from flask_login import login_required

from autodoctor.blueprints.public import bp
from autodoctor.realtime import Message, presenter, sse_response
from autodoctor.services import presence

CHANNEL = "presence"
MAX_IDS = 200


def badge_message(mechanic_id, status):
    html = render_template("shared/_presence_badge.html", mechanic_id=mechanic_id, presence=status, oob=True)
    return Message(channel=CHANNEL, event="presence", data=html)


@presenter("presence.changed")
def present_badge(mechanic_id, **_):
    return [badge_message(mechanic_id, presence.status(mechanic_id))]


@presenter("request.changed", "session.changed")
def present_badge_busy(session_id=None, **_):
    mechanic_id = presence.session_mechanic_id(session_id)
    return [badge_message(mechanic_id, presence.status(mechanic_id))] if mechanic_id else []


def _ids(raw):
    ids = []
    for part in (raw or "").split(",")[:MAX_IDS]:
        part = part.strip()
        if part.isascii() and part.isdigit() and len(part) <= 9 and int(part) not in ids:
            ids.append(int(part))
    return ids


@bp.get("/presence/stream")
@login_required
def presence_stream():
    ids = _ids(request.args.get("ids"))
    return sse_response([CHANNEL], lambda: [badge_message(mechanic_id, status) for mechanic_id, status
                                            in sorted(presence.statuses(ids).items())])
