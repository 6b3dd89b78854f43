"""A customer's favorite mechanics: add or remove one (the button on a public profile and on
the browse page), and the set of them (favorites first when browsing, the wizard's filter).

Only approved, active mechanics can be added; removing always works (a favorite whose mechanic
was since suspended can still be taken off the list). A double click cannot add a row twice:
the unique (customer, mechanic) constraint decides, inside a savepoint."""
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from autodoctor.extensions import db
from autodoctor.models import Favorite, MechanicProfile, User
from autodoctor.services.errors import NotFound

NOT_A_MECHANIC = "That mechanic does not exist."


def is_favorite(customer_id, mechanic_id):
    return db.session.scalar(select(Favorite.id).where(
        Favorite.customer_id == customer_id, Favorite.mechanic_id == mechanic_id)) is not None


def favorite_ids(customer_id):
    """The ids of the customer's favorite mechanics (a set; empty for nobody)."""
    if customer_id is None:
        return set()
    return set(db.session.scalars(select(Favorite.mechanic_id).where(Favorite.customer_id == customer_id)))


def bookable_mechanic(mechanic_id):
    """The approved, active mechanic with this id, or None."""
    return db.session.scalar(select(User).join(MechanicProfile, MechanicProfile.user_id == User.id).where(
        User.id == mechanic_id, User.role == "mechanic", User.is_active_account, MechanicProfile.approved))


def add(customer_id, mechanic_id):
    """Make the mechanic a favorite (nothing happens when it already is one)."""
    if bookable_mechanic(mechanic_id) is None:
        raise NotFound(NOT_A_MECHANIC)
    if is_favorite(customer_id, mechanic_id):
        return
    try:
        with db.session.begin_nested():
            db.session.add(Favorite(customer_id=customer_id, mechanic_id=mechanic_id))
    except IntegrityError:  # the same click, twice, at the same moment: it is a favorite either way
        pass


def remove(customer_id, mechanic_id):
    """Take the mechanic off the customer's favorites; True when it was one."""
    return bool(db.session.execute(delete(Favorite).where(
        Favorite.customer_id == customer_id, Favorite.mechanic_id == mechanic_id),
        execution_options={"synchronize_session": False}).rowcount)


def toggle(customer_id, mechanic_id):
    """Add or remove; returns whether the mechanic is a favorite now. Unknown ids, and ids of
    people who are not mechanics, raise NotFound."""
    if remove(customer_id, mechanic_id):
        return False
    add(customer_id, mechanic_id)
    return True
