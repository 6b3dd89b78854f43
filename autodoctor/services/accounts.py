"""Users: sign-up, password checks, demo accounts."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from autodoctor.extensions import db
from autodoctor.models import MechanicProfile, User
from autodoctor.offload import off_hub
from autodoctor.services.errors import Conflict, ValidationError

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


def authenticate(email, password):
    """Return the user for these credentials, or None."""
    user = db.session.scalar(db.select(User).where(User.email == normalize_email(email)))
    try:
        off_hub("argon2", _hasher.verify, user.password_hash if user else _DUMMY_HASH, password or "")
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.is_active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = off_hub("argon2", _hasher.hash, password)
    return user
