"""The public mechanic directory: browse approved mechanics (online first, then a customer's
favorites, then the best rated), filter by text and by "online now", and one mechanic's public
profile with their latest reviews. Profile completeness is for matching, not shown here."""
from dataclasses import dataclass, field
from math import ceil

import sqlalchemy as sa
from sqlalchemy import select

from autodoctor.extensions import db
from autodoctor.models import ConsultSession, MechanicProfile, User
from autodoctor.services import favorites, matching, presence
from autodoctor.services.errors import NotFound
from autodoctor.services.history import Paging

PER_PAGE = 12
REVIEWS_SHOWN = 5
TEXT_LIMIT = 80  # characters of the search text kept
WORDS_LIMIT = 5


@dataclass(frozen=True)
class Card:
    """A mechanic as the directory shows them."""

    user: User
    profile: MechanicProfile
    presence: str  # "online" | "busy" | "offline"
    favorite: bool

    @property
    def id(self):
        return self.user.id

    @property
    def specialties(self):
        return _items(self.profile.specialties)

    @property
    def brands(self):
        return _items(self.profile.brands)

    @property
    def place(self):
        return ", ".join(p for p in (self.user.city, self.user.country) if p)


@dataclass(frozen=True)
class Review:
    rating: int
    text: str
    author: str  # the customer's first name only
    rated_at: object


@dataclass(frozen=True)
class Profile:
    card: Card
    reviews: list = field(default_factory=list)
    review_count: int = 0


@dataclass(frozen=True)
class Page(Paging):
    cards: list
    page: int
    per_page: int
    total: int


def _items(text):
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def _listed():
    """Approved, active mechanics with their profiles."""
    return (select(User, MechanicProfile).join(MechanicProfile, MechanicProfile.user_id == User.id)
            .where(User.role == "mechanic", User.is_active_account, MechanicProfile.approved))


def _like(word):
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_words(text):
    """The words a search text is read as (lower case, at most WORDS_LIMIT)."""
    return (text or "")[:TEXT_LIMIT].lower().split()[:WORDS_LIMIT]


def browse(text="", online_only=False, page=1, customer_id=None, per_page=None):
    """One page of the directory. Every word of `text` must appear in the name, city, brands or
    specialties ("honda toronto"); short brand names count as their full ones ("vw")."""
    per_page = per_page or PER_PAGE
    query = _listed()
    for word in search_words(text):
        variants = {word, matching.brand(word)}
        query = query.where(sa.or_(*(column.ilike(_like(v), escape="\\") for v in variants
                                     for column in (User.full_name, User.city, MechanicProfile.brands,
                                                    MechanicProfile.specialties))))
    if online_only:
        query = query.where(MechanicProfile.presence == "online")
    total = db.session.scalar(select(sa.func.count()).select_from(query.subquery()))
    pages = max(1, ceil(total / per_page))
    page = min(max(1, page), pages)
    favorite = favorites.favorite_ids(customer_id)
    rating = sa.cast(MechanicProfile.rating_sum, sa.Float) / sa.func.nullif(MechanicProfile.rating_count, 0)
    order = [sa.case((MechanicProfile.presence == "online", 0), else_=1)]
    if favorite:
        order.append(sa.case((User.id.in_(favorite), 0), else_=1))
    order += [rating.desc().nulls_last(), MechanicProfile.rating_count.desc(),
              MechanicProfile.completed_sessions.desc(), User.id]
    rows = db.session.execute(query.order_by(*order).limit(per_page).offset((page - 1) * per_page)).all()
    status = presence.statuses([user.id for user, _ in rows])
    cards = [Card(user, profile, status[user.id], user.id in favorite) for user, profile in rows]
    return Page(cards, page, per_page, total)


def profile(mechanic_id, customer_id=None):
    """A mechanic's public profile; NotFound unless they are an approved, active mechanic."""
    row = db.session.execute(_listed().where(User.id == mechanic_id)).first()
    if row is None:
        raise NotFound("That mechanic does not exist.")
    user, mechanic_profile = row
    has_review = sa.and_(ConsultSession.mechanic_id == mechanic_id, ConsultSession.rating.is_not(None),
                         sa.func.length(sa.func.trim(sa.func.coalesce(ConsultSession.review, ""))) > 0)
    review_count = db.session.scalar(select(sa.func.count(ConsultSession.id)).where(has_review))
    latest = db.session.execute(
        select(ConsultSession.rating, ConsultSession.review, ConsultSession.rated_at, User.full_name)
        .join(User, User.id == ConsultSession.customer_id).where(has_review)
        .order_by(ConsultSession.rated_at.desc().nulls_last(), ConsultSession.id.desc()).limit(REVIEWS_SHOWN)).all()
    reviews = [Review(r.rating, r.review.strip(), (r.full_name or "").split(" ")[0] or "A customer", r.rated_at)
               for r in latest]
    card = Card(user, mechanic_profile, presence.statuses([mechanic_id])[mechanic_id],
                customer_id is not None and favorites.is_favorite(customer_id, mechanic_id))
    return Profile(card, reviews, review_count)
