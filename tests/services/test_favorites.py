"""Favorites: add and remove (toggle), only approved active mechanics can be added, removing
always works, and a favorite is one row however many times it is added at once."""
import pytest
import sqlalchemy as sa

from autodoctor.extensions import db
from autodoctor.models import Favorite
from autodoctor.services import favorites
from autodoctor.services.errors import NotFound
from tests.factories import UserFactory


@pytest.fixture
def people(app):
    made = UserFactory("customer"), UserFactory("mechanic"), UserFactory("mechanic")
    db.session.commit()
    return made


def test_toggle_adds_then_removes(app, people):
    customer, mechanic, other = people
    assert favorites.favorite_ids(customer.id) == set()
    assert favorites.toggle(customer.id, mechanic.id) is True
    assert favorites.toggle(customer.id, other.id) is True
    db.session.commit()
    assert favorites.favorite_ids(customer.id) == {mechanic.id, other.id}
    assert favorites.is_favorite(customer.id, mechanic.id)
    assert favorites.toggle(customer.id, mechanic.id) is False
    db.session.commit()
    assert favorites.favorite_ids(customer.id) == {other.id}
    assert not favorites.is_favorite(customer.id, mechanic.id)


def test_favorites_are_each_customers_own(app, people):
    customer, mechanic, _ = people
    someone = UserFactory("customer")
    favorites.toggle(customer.id, mechanic.id)
    db.session.commit()
    assert favorites.favorite_ids(someone.id) == set()
    assert favorites.favorite_ids(None) == set()


@pytest.mark.parametrize("who", ["nobody", "customer", "admin", "unapproved", "suspended"])
def test_only_an_approved_active_mechanic_can_be_added(app, people, who):
    customer, mechanic, _ = people
    if who == "nobody":
        target_id = 987654
    elif who in ("customer", "admin"):
        target_id = UserFactory(who).id
    else:
        target_id = mechanic.id
        if who == "unapproved":
            mechanic.mechanic_profile.approved = False
        else:
            mechanic.is_active_account = False
    db.session.commit()
    with pytest.raises(NotFound):
        favorites.toggle(customer.id, target_id)
    db.session.rollback()
    assert favorites.favorite_ids(customer.id) == set()


def test_a_suspended_mechanic_can_still_be_removed(app, people):
    customer, mechanic, _ = people
    favorites.toggle(customer.id, mechanic.id)
    mechanic.mechanic_profile.approved = False
    db.session.commit()
    assert favorites.toggle(customer.id, mechanic.id) is False
    db.session.commit()
    assert favorites.favorite_ids(customer.id) == set()


def test_adding_twice_keeps_one_row(app, people):
    customer, mechanic, _ = people
    favorites.add(customer.id, mechanic.id)
    favorites.add(customer.id, mechanic.id)
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count(Favorite.id))) == 1


def test_ten_adds_at_once_make_one_favorite_on_postgres(pg_app):
    """Ten tabs (threads, one session each) add the same favorite at the same moment: the
    unique constraint decides inside a savepoint, so nobody sees an error."""
    import threading

    customer, mechanic = UserFactory("customer"), UserFactory("mechanic")
    db.session.commit()
    ids = customer.id, mechanic.id
    db.session.remove()
    barrier, errors = threading.Barrier(10), []

    def add():
        try:
            with pg_app.app_context():
                barrier.wait(5)
                favorites.add(*ids)
                db.session.commit()
                db.session.remove()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert errors == []
    assert db.session.scalar(sa.select(sa.func.count(Favorite.id))) == 1
