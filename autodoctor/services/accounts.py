"""Users: sign-up, password checks, password resets, demo accounts."""
import hashlib
from datetime import UTC

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import update

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import MechanicProfile, User
from autodoctor.offload import off_hub
from autodoctor.services.errors import Conflict, ServiceError, ValidationError

_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so a miss costs the same time as a hit.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
MIN_PASSWORD = 10
def normalize_email(email):
    return (email or "").strip().lower()


def create_user(email, password, full_name, role="customer", city=None, country=None):
    """Create a user with an Argon2id password hash."""
    email = normalize_email(email)
    if len(password or "") < MIN_PASSWORD:
        raise ValidationError(f"Use at least {MIN_PASSWORD} characters.", field="password")
    if db.session.scalar(db.select(User.id).where(User.email == email)):
        raise Conflict("An account with this e-mail already exists. Log in instead.", field="email")
    user = User(email=email, password_hash=off_hub("argon2", _hasher.hash, password), full_name=full_name.strip(),
                role=role, city=city, country=country)
    db.session.add(user)
    if role == "mechanic":
        db.session.add(MechanicProfile(user=user))
    db.session.flush()
    return user


class AccountClosed(ServiceError):
    """The right password for a suspended or banned account: the person is told why (only
    after a correct password, so the status of an e-mail address cannot be probed)."""

    def __init__(self, user):
        support = current_app.config["SUPPORT_EMAIL"]
        reason = (user.status_reason or "").rstrip(". ")
        super().__init__(f"Your account is {user.status}{': ' + reason if reason else ''}. "
                         f"Contact {support} if you think this is a mistake.")
        self.user = user


def authenticate(email, password):
    """Return the user for these credentials, or None; AccountClosed for the right password of
    a suspended or banned account."""
    user = db.session.scalar(db.select(User).where(User.email == normalize_email(email)))
    try:
        off_hub("argon2", _hasher.verify, user.password_hash if user else _DUMMY_HASH, password or "")
    except (VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if not user.is_active:
        raise AccountClosed(user)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = off_hub("argon2", _hasher.hash, password)
    return user


# Password reset. The link carries the user id and a fingerprint of the current password hash,
# signed and timestamped: it works for an hour, and only once (a new password changes the fingerprint).

RESET_SALT = "password-reset"
RESET_MAX_AGE = 3600
RESET_USED = "This reset link has expired or was already used. Ask for a new one."


class _ClockSigner(TimestampSigner):
    """Timestamps from the one clock (tests move it)."""

    def get_timestamp(self):
        return int(clock.now().replace(tzinfo=UTC).timestamp())


def _serializer():
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=RESET_SALT, signer=_ClockSigner)


def _fingerprint(password_hash):
    return hashlib.sha256(password_hash.encode()).hexdigest()[:20]


def reset_token(user):
    return _serializer().dumps([user.id, _fingerprint(user.password_hash)])


def user_for_reset_token(token):
    """The user a reset link is for; ValidationError when it is forged, expired or used."""
    try:
        user_id, fingerprint = _serializer().loads(token, max_age=RESET_MAX_AGE)
    except (SignatureExpired, BadSignature, TypeError, ValueError):
        raise ValidationError(RESET_USED) from None
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or fingerprint != _fingerprint(user.password_hash):
        raise ValidationError(RESET_USED)
    return user


def send_password_reset(user):
    """E-mail the person a link to choose a new password (valid for an hour, usable once)."""
    from autodoctor.services.notifications import queue_email
    from autodoctor.urls import url

    link = url("auth.reset_password_show", token=reset_token(user), _external=True)
    return queue_email(user.email, "Reset your AutoDoctor password", "emails/password_reset.txt",
                       user=user, link=link, hours=RESET_MAX_AGE // 3600)


def request_password_reset(email):
    """"Forgot your password?": a link for the account with this e-mail, if there is one. The
    caller answers the same either way."""
    user = db.session.scalar(db.select(User).where(User.email == normalize_email(email)))
    if user is not None:
        send_password_reset(user)
    return user


def reset_password(token, password):
    """Set a new password from a reset link: a new Argon2 hash (which also spends the link) and
    a raised auth version, so every other login of the account ends."""
    user = user_for_reset_token(token)
    if len(password or "") < MIN_PASSWORD:
        raise ValidationError(f"Use at least {MIN_PASSWORD} characters.", field="password")
    new_hash = off_hub("argon2", _hasher.hash, password)
    result = db.session.execute(update(User).where(User.id == user.id, User.password_hash == user.password_hash)
                                .values(password_hash=new_hash, auth_version=User.auth_version + 1),
                                execution_options={"synchronize_session": False})
    if result.rowcount != 1:  # the same link used twice at once: only one wins
        raise ValidationError(RESET_USED)
    db.session.expire(user)
    return user
