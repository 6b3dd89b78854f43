"""The only module that talks to LiveKit: room access tokens for the browser and the
verification of LiveKit's webhooks. Without LIVEKIT_URL/API_KEY/API_SECRET the room says
video is not configured and chat carries the session alone."""
from datetime import timedelta

from flask import current_app
from google.protobuf.json_format import MessageToDict
from livekit import api


class SignatureError(Exception):
    pass


def configured():
    config = current_app.config
    return bool(config.get("LIVEKIT_URL") and config.get("LIVEKIT_API_KEY") and config.get("LIVEKIT_API_SECRET"))


def server_url():
    return current_app.config["LIVEKIT_URL"]


def _credentials():
    return current_app.config["LIVEKIT_API_KEY"], current_app.config["LIVEKIT_API_SECRET"]


def access_token(identity: str, name: str, room: str) -> str:
    """A JWT that lets `identity` join `room` and nothing else, for a few minutes (LiveKit
    only checks it when joining; a connected participant is refreshed by the server)."""
    ttl = timedelta(seconds=current_app.config["LIVEKIT_TOKEN_TTL_SECONDS"])
    grants = api.VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True, can_publish_data=True)
    return (api.AccessToken(*_credentials()).with_identity(identity).with_name(name).with_ttl(ttl)
            .with_grants(grants).to_jwt())


def parse_webhook(body: bytes, authorization: str | None) -> dict:
    """Check the Authorization JWT (signed with our API secret, holding the body's sha256)
    and return the event as a plain dict (proto field names: `event`, `id`, `room.name`,
    `participant.identity`...)."""
    if not configured():
        raise SignatureError("LiveKit is not configured on this server.")
    token = (authorization or "").strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    if not token:
        raise SignatureError("Missing Authorization header.")
    receiver = api.WebhookReceiver(api.TokenVerifier(*_credentials()))
    try:
        event = receiver.receive(body.decode("utf-8"), token)
    # The SDK signals a bad token, a hash mismatch or a malformed body with assorted
    # exception types (jwt errors, bare Exception, protobuf ParseError): all mean "reject".
    except Exception as exc:  # noqa: BLE001
        raise SignatureError(str(exc) or exc.__class__.__name__) from None
    return MessageToDict(event, preserving_proto_field_name=True)
