"""Users: sign-up, password checks, demo accounts."""
import sys

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from autodoctor.extensions import db
from autodoctor.models import MechanicProfile, User
from autodoctor.services.errors import Conflict, ValidationError

_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so a miss costs the same time as a hit.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
MIN_PASSWORD = 10
_hash_pool = None


def _off_hub(fn, *args):
    """Run an Argon2 call (~0.25 s of CPU inside C, GIL released) without stalling gevent.
    Under gunicorn's gevent worker it would otherwise block the hub, freezing every stream and
    websocket of the process for the duration of each log-in. One native thread per process
    keeps the memory bound of before (one 64 MiB Argon2 buffer at a time per process)."""
    global _hash_pool
    if "gevent" in sys.modules:
        from gevent import monkey

        if monkey.is_module_patched("threading"):
            if _hash_pool is None:
                from gevent.threadpool import ThreadPool

                _hash_pool = ThreadPool(1)
            return _hash_pool.apply(fn, args)
    return fn(*args)


def normalize_email(email):
    return (email or "").strip().lower()


def create_user(email, password, full_name, role="customer", city=None, country=None):
    """Create a user with an Argon2id password hash."""
    email = normalize_email(email)
    if len(password or "") < MIN_PASSWORD:
        raise ValidationError(f"Use at least {MIN_PASSWORD} characters.", field="password")
    if db.session.scalar(db.select(User.id).where(User.email == email)):
        raise Conflict("An account with this e-mail already exists. Log in instead.", field="email")
    user = User(email=email, password_hash=_off_hub(_hasher.hash, password), full_name=full_name.strip(),
                role=role, city=city, country=country)
    db.session.add(user)
    if role == "mechanic":
        db.session.add(MechanicProfile(user=user))
    db.session.flush()
    return user


def authenticate(email, password):
    """Return the user for these credentials, or None."""
    user = db.session.scalar(db.select(User).where(User.email == normalize_email(email)))
    try:
        _off_hub(_hasher.verify, user.password_hash if user else _DUMMY_HASH, password or "")
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.is_active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _off_hub(_hasher.hash, password)
    return user
