"""The admin console's tables: one small engine and one spec per table.

A spec names the table's columns (a SQL expression each, labelled with the column's key), the
filters it offers, its main date column and its default sort. The engine turns query-string
arguments into a validated `TableState` (bad values become messages, never errors), builds
one SELECT with the joins the page shows (plain columns, no ORM objects, no N+1), pages it
with a keyset cursor (`after=<token>` of the last row's sort value and id; no OFFSET, no
COUNT over the table) and streams the whole filtered set as CSV in batches. A page's rows are
picked on the main table alone (an id subquery with the filters, sort and cursor) and only
those 50 are joined, so page 1 and page 2,000 cost the same.

Sorting is always (sort column, id) in one direction, so rows with equal sort values keep a
stable order and the cursor never repeats or skips a row; a nullable sort column puts its
NULLs last in both directions."""
import base64
import binascii
import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from flask import g, url_for
from sqlalchemy.orm import aliased

from autodoctor.extensions import db
from autodoctor.models import (
    REQUEST_STATUSES,
    SESSION_STATUSES,
    AuditEntry,
    ConsultSession,
    Intake,
    MechanicProfile,
    Payment,
    Plan,
    SessionRequest,
    User,
    Vehicle,
)
from autodoctor.models.money import PAYMENT_PURPOSES, PAYMENT_STATUSES
from autodoctor.models.users import USER_STATUSES

PAGE_SIZE = 50
CSV_BATCH = 1000
MAX_QUERY = 100
PEOPLE_LIST = 500
_MAX_ID = 2**31  # the database's integer columns: a larger number in a link is not ours
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Column:
    """One column. `kind` decides how the page shows it (text, id, when, money, badge, bool,
    person, vehicle, place, duration, target, changes); `link(row)` gives the cell's URL;
    `csv` is False to leave it out of the CSV, or a function of the row for a computed value.
    `show=False` columns are selected for other cells (links, sub-lines) or the CSV only."""

    key: str
    label: str
    expr: object
    sortable: bool = False
    kind: str = "text"
    link: object = None
    csv: object = None
    show: bool = True
    nullable: bool | None = None

    @property
    def is_nullable(self):
        if self.nullable is not None:
            return self.nullable
        return getattr(self.expr, "nullable", True)


@dataclass(frozen=True)
class Choice:
    """A filter that picks one value from a list: `options()` gives (value, label) pairs,
    `clause(value)` the WHERE condition for a valid value."""

    key: str
    label: str
    options: object
    clause: object
    valid: object = None  # value -> bool, when checking it must not load the options


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    noun: str  # plural, for "No sessions match these filters."
    columns: tuple
    page_from: object  # () -> the FROM clause every filter and sort column needs (the main table)
    select_from: object  # () -> the FROM clause with the joins the columns show
    date_expr: object  # the main date column: the from/to range and the default sort
    where: tuple = ()  # conditions every row of the table meets (role = 'customer', ...)
    choices: tuple = ()
    people: tuple = ()  # user-id expressions whose name or email `q` searches
    text: tuple = ()  # text expressions `q` searches directly
    ids: tuple = ()  # id expressions "#123" matches
    search_hint: str = "Name, email or #id"
    default_sort: str = "-created"

    @property
    def index_endpoint(self):
        return f"admin.{self.name}_index"

    @property
    def csv_endpoint(self):
        return f"admin.{self.name}_csv"

    @property
    def column_map(self):
        return {c.key: c for c in self.columns}

    @property
    def visible(self):
        return [c for c in self.columns if c.show]

    @property
    def csv_columns(self):
        return [c for c in self.columns if c.csv is not False]

    @property
    def id_column(self):
        return self.column_map["id"]


@dataclass
class TableState:
    """The validated view of one table: filters, sort, cursor, and messages about bad input."""

    spec: TableSpec
    choices: dict = field(default_factory=dict)  # key -> valid selected value
    _options: dict = field(default_factory=dict)  # key -> [(value, label)], loaded when needed
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""
    sort_key: str = "created"
    descending: bool = True
    after: tuple | None = None  # (sort value, id) of the last row of the previous page
    errors: list = field(default_factory=list)

    def options_for(self, choice):
        if choice.key not in self._options:
            self._options[choice.key] = choice.options()
        return self._options[choice.key]

    @property
    def sort_column(self):
        return self.spec.column_map[self.sort_key]

    @property
    def sort_arg(self):
        return ("-" if self.descending else "") + self.sort_key

    @property
    def is_filtered(self):
        return bool(self.choices or self.date_from or self.date_to or self.q)

    def args(self, **overrides):
        """The query-string arguments for this view (defaults left out), with `overrides`
        (None removes an argument)."""
        args = {key: value for key, value in self.choices.items()}
        if self.q:
            args["q"] = self.q
        if self.date_from:
            args["from"] = self.date_from.isoformat()
        if self.date_to:
            args["to"] = self.date_to.isoformat()
        if self.sort_arg != self.spec.default_sort:
            args["sort"] = self.sort_arg
        if self.after is not None:
            args["after"] = encode_cursor(self.sort_key, *self.after)
        for key, value in overrides.items():
            if value is None:
                args.pop(key, None)
            else:
                args[key] = value
        return args

    def sort_args(self, key):
        """Arguments for a click on column `key`'s header: that column, the other direction if
        it is the current sort (newest/largest first otherwise), from the first page."""
        descending = not self.descending if key == self.sort_key else True
        sort = ("-" if descending else "") + key
        return self.args(sort=None if sort == self.spec.default_sort else sort, after=None)

    @property
    def sort_label(self):
        column = self.sort_column
        if column.kind == "when":
            order = "newest first" if self.descending else "oldest first"
        elif column.kind in ("text", "badge", "person"):
            order = "Z to A" if self.descending else "A to Z"
        else:
            order = "largest first" if self.descending else "smallest first"
        return f"{column.label}, {order}"


@dataclass
class Page:
    rows: list
    next_cursor: str | None


def _value_kind(expr):
    kind = getattr(expr, "type", None)
    if isinstance(kind, sa.DateTime):
        return "datetime"
    if isinstance(kind, sa.Integer):
        return "int"
    if isinstance(kind, (sa.Float, sa.Numeric)):
        return "float"
    return "str"


def encode_cursor(sort_key, value, row_id):
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort_key, value, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token, column):
    """(value, id) from a cursor made for `column`; ValueError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        sort_key, value, row_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError("bad token") from None
    if sort_key != column.key or type(row_id) is not int or not 0 < row_id < _MAX_ID:
        raise ValueError("another sort")
    if value is None:
        if not column.is_nullable:
            raise ValueError("null value")
        return None, row_id
    kind = _value_kind(column.expr)
    if kind == "datetime" and isinstance(value, str):
        return datetime.fromisoformat(value), row_id
    if kind == "int" and type(value) is int and abs(value) < _MAX_ID:
        return value, row_id
    if kind == "float" and type(value) in (int, float):
        return float(value), row_id
    if kind == "str" and isinstance(value, str):
        return value, row_id
    raise ValueError("wrong type")


def _parse_date(raw, label, errors):
    raw = (raw or "").strip()
    if not raw:
        return None
    if _DATE.fullmatch(raw) and 1900 <= int(raw[:4]) <= 2999:
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    errors.append(f"“{raw[:20]}” is not a date for “{label}”: use YYYY-MM-DD, like 2026-03-31. "
                  f"Showing results without that date.")
    return None


def parse(spec, args):
    """The validated state for query-string `args`: unknown values are left out, each with a
    message; an unknown sort falls back to the default; a stale cursor to the first page."""
    state = TableState(spec=spec)
    for choice in spec.choices:
        raw = (args.get(choice.key) or "").strip()
        if not raw:
            continue
        if choice.valid(raw) if choice.valid else raw in {value for value, _ in state.options_for(choice)}:
            state.choices[choice.key] = raw
        else:
            state.errors.append(f"“{raw[:40]}” is not a {choice.label.lower()} here. "
                                f"Choose one from the list; showing every {choice.label.lower()}.")
    state.date_from = _parse_date(args.get("from"), "From", state.errors)
    state.date_to = _parse_date(args.get("to"), "To", state.errors)
    if state.date_from and state.date_to and state.date_from > state.date_to:
        state.errors.append(f"The “From” date ({state.date_from:%Y-%m-%d}) is after the “To” date "
                            f"({state.date_to:%Y-%m-%d}). Showing results without the date range.")
        state.date_from = state.date_to = None
    state.q = " ".join((args.get("q") or "").split())[:MAX_QUERY]
    sort = (args.get("sort") or spec.default_sort).strip()
    if not _set_sort(state, sort):
        _set_sort(state, spec.default_sort)
    token = (args.get("after") or "").strip()
    if token:
        try:
            state.after = decode_cursor(token, state.sort_column)
        except ValueError:
            state.errors.append("That page link no longer matches this view; showing the first page.")
    return state


def _set_sort(state, sort):
    key = sort.lstrip("-")
    column = state.spec.column_map.get(key)
    if column is None or not column.sortable:
        return False
    state.sort_key, state.descending = key, sort.startswith("-")
    return True


def _search_clause(spec, q):
    digits = q.lstrip("#")
    clauses = []
    if digits.isascii() and digits.isdigit() and len(digits) <= 9:
        clauses += [expr == int(digits) for expr in spec.ids]
        if q.startswith("#"):
            return sa.or_(*clauses) if clauses else sa.false()
    if spec.people:
        clauses += _people_clauses(q, spec.people)
    clauses += [expr.icontains(q, autoescape=True) for expr in spec.text]
    return sa.or_(*clauses) if clauses else sa.false()


def _filtered(state, stmt):
    spec = state.spec
    stmt = stmt.where(*spec.where)
    for choice in spec.choices:
        if choice.key in state.choices:
            stmt = stmt.where(choice.clause(state.choices[choice.key]))
    if state.date_from:
        stmt = stmt.where(spec.date_expr >= datetime.combine(state.date_from, time.min))
    if state.date_to:
        stmt = stmt.where(spec.date_expr < datetime.combine(state.date_to + timedelta(days=1), time.min))
    if state.q:
        stmt = stmt.where(_search_clause(spec, state.q))
    return stmt.order_by(*_order(state))


def _columns(spec):
    return sa.select(*[c.expr.label(c.key) for c in spec.columns]).select_from(spec.select_from())


def _people_clauses(q, exprs):
    """`expr` names a person whose name or email contains `q`, for each of `exprs`. The
    matching ids are read once: a short list lets the database use the indexes on the table's
    person columns; when many people match, each row's person is checked instead (walking the
    table in the page's order, the first page fills quickly then)."""
    match = sa.or_(User.email.icontains(q, autoescape=True), User.full_name.icontains(q, autoescape=True))
    ids = db.session.scalars(sa.select(User.id).where(match).limit(PEOPLE_LIST + 1)).all()
    if len(ids) <= PEOPLE_LIST:
        return [expr.in_(ids) for expr in exprs] if ids else []
    return [sa.select(User.email + " " + User.full_name).where(User.id == expr).scalar_subquery()
            .icontains(q, autoescape=True) for expr in exprs]


def filtered_select(state):
    """One SELECT of every column of the whole filtered set, in the view's order (the CSV)."""
    return _filtered(state, _columns(state.spec))


def page_select(state):
    """One page: the ids of the page's rows are found on the main table alone (filters, sort
    and cursor only need its columns), then only those rows are joined to what the page shows,
    so a page costs the same on the first page and the thousandth, whatever the joins."""
    spec = state.spec
    ids = _filtered(state, sa.select(spec.id_column.expr).select_from(spec.page_from()))
    if state.after is not None:
        ids = ids.where(_after(state))
    ids = ids.limit(PAGE_SIZE + 1)
    return _columns(spec).where(spec.id_column.expr.in_(ids.scalar_subquery())).order_by(*_order(state))


def _order(state):
    column, id_expr = state.sort_column, state.spec.id_column.expr
    if column.key == "id":
        return [id_expr.desc() if state.descending else id_expr.asc()]
    expr = column.expr.desc() if state.descending else column.expr.asc()
    if column.is_nullable:
        expr = expr.nulls_last()
    return [expr, id_expr.desc() if state.descending else id_expr.asc()]


def _after(state):
    """Rows after the cursor in (sort value, id) order. Written as `col <= v AND (col < v OR
    id < i)` (descending) so the database can use an index on the sort column for the range."""
    value, row_id = state.after
    column, id_expr = state.sort_column, state.spec.id_column.expr
    beyond = (lambda a, b: a < b) if state.descending else (lambda a, b: a > b)
    if column.key == "id":
        return beyond(id_expr, row_id)
    expr = column.expr
    if value is None:  # inside the NULL tail, which comes last either way
        return sa.and_(expr.is_(None), beyond(id_expr, row_id))
    bound = expr <= value if state.descending else expr >= value
    clause = sa.and_(bound, sa.or_(beyond(expr, value), beyond(id_expr, row_id)))
    return sa.or_(clause, expr.is_(None)) if column.is_nullable else clause


def _without_jit():
    """Postgres compiles a query to machine code when its estimated cost is high, which a
    filter the planner cannot estimate (a search, a correlated check) easily reaches: about a
    second of compiling for a query that then runs in milliseconds. Off for this transaction."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("SET LOCAL jit = off"))


def fetch_page(state):
    """One page of rows (mappings) and the cursor of the next page (None on the last)."""
    _without_jit()
    rows = [row._mapping for row in db.session.execute(page_select(state))]
    next_cursor = None
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        last = rows[-1]
        next_cursor = encode_cursor(state.sort_key, last[state.sort_key], last["id"])
    return Page(rows=rows, next_cursor=next_cursor)


def _plain(value):
    """A CSV cell: datetimes to the second, JSON as text, and text that a spreadsheet would
    run as a formula (a customer's name starting with "=") made inert with a quote."""
    if value is None or value.__class__ is int:
        return value
    if isinstance(value, str):
        return "'" + value if value[:1] in _FORMULA_STARTS else value
    if isinstance(value, datetime):
        return value.isoformat(" ", "seconds")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


_FORMULA_STARTS = frozenset("=+-@\t\r")


def _dollars(cents):
    return None if cents is None else f"{cents / 100:.2f}"


def _csv_cells(spec):
    """A function from a result row to its CSV cells, decided once per export (a CSV of
    100,000 rows calls it 100,000 times)."""
    positions = {c.key: i for i, c in enumerate(spec.columns)}
    getters = []
    for column in spec.csv_columns:
        if callable(column.csv):
            getters.append(lambda row, f=column.csv: _plain(f(row._mapping)))
        elif column.kind in ("money", "credit"):
            getters.append(lambda row, i=positions[column.key]: _dollars(row[i]))
        else:
            getters.append(lambda row, i=positions[column.key]: _plain(row[i]))
    return lambda row: [get(row) for get in getters]


def csv_filename(spec, today):
    return f"autodoctor-{spec.name}-{today:%Y-%m-%d}.csv"


def csv_chunks(state):
    """The CSV of the whole filtered set, as text chunks of up to CSV_BATCH rows, read from
    the database in batches (a server-side cursor on Postgres): never all rows at once."""
    columns, cells = state.spec.csv_columns, _csv_cells(state.spec)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([c.label for c in columns])
    yield buffer.getvalue()
    _without_jit()
    result = db.session.execute(filtered_select(state).execution_options(yield_per=CSV_BATCH))
    try:
        for batch in result.partitions():
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(cells(row) for row in batch)
            yield buffer.getvalue()
    finally:
        result.close()


def _link(endpoint, key):
    """A cell's link builder: the page of `endpoint` for the id in row[key] (None without one)."""
    param = _PARAMS[endpoint]

    def build(row):
        value = row[key]
        if value is None:
            return None
        # url_for once per endpoint and request: a page has a few hundred links.
        patterns = g.setdefault("admin_table_urls", {})
        if endpoint not in patterns:
            patterns[endpoint] = url_for(endpoint, **{param: _PLACEHOLDER}).replace(str(_PLACEHOLDER), "{}", 1)
        return patterns[endpoint].format(int(value))

    return build


_PLACEHOLDER = 987654321
_PARAMS = {"admin.session_show": "session_id", "admin.user_show": "user_id",
           "admin.application_show": "user_id", "admin.outbox_show": "email_id"}


def _first_link(*builders):
    def build(row):
        for builder in builders:
            url = builder(row)
            if url:
                return url
        return None

    return build


def _person(prefix, alias, label, id_expr, nullable=False):
    """A person cell (name, with the email under it, linked to their page) and its CSV columns."""
    return (
        Column(prefix, label, alias.full_name, kind="person", link=_link("admin.user_show", f"{prefix}_id"),
               nullable=nullable),
        Column(f"{prefix}_email", f"{label} email", alias.email, show=False, nullable=nullable),
        Column(f"{prefix}_id", f"{label} id", id_expr, show=False, nullable=nullable),
    )


def _plans():
    return [(code, name) for code, name in db.session.execute(sa.select(Plan.code, Plan.name).order_by(Plan.position))]


def _plan_id(code):
    return sa.select(Plan.id).where(Plan.code == code).scalar_subquery()


def _plan_choice(plan_id_expr):
    return Choice("plan", "Plan", _plans, lambda code: plan_id_expr == _plan_id(code))


def _status_choice(expr, statuses):
    return Choice("status", "Status", lambda: [(s, s.replace("_", " ").capitalize()) for s in statuses],
                  lambda value: expr == value)


def _duration_csv(row):
    started, ended = row["started_at"], row["ended_at"]
    return max(0, round((ended - started).total_seconds() / 60)) if started and ended else None


# Sortable columns are those an index keeps in order (id, the main date; on the small mechanics
# table any): sorting 100,000 sessions by anything else would read and sort them all per page.
S, R, N, Y, A = ConsultSession, SessionRequest, Intake, Payment, AuditEntry
_customer = aliased(User, name="customer")
_mechanic = aliased(User, name="mechanic")
_actor = aliased(User, name="actor")
_target_request = aliased(SessionRequest, name="target_request")
_session_link = _link("admin.session_show", "session_id")

SESSIONS = TableSpec(
    name="sessions", title="Sessions", noun="sessions",
    page_from=lambda: S.__table__,
    select_from=lambda: S.__table__.join(Plan, Plan.id == S.plan_id)
    .join(_customer, _customer.id == S.customer_id).outerjoin(_mechanic, _mechanic.id == S.mechanic_id),
    date_expr=S.created_at,
    columns=(
        Column("id", "#", S.id, sortable=True, kind="id", link=_link("admin.session_show", "id")),
        Column("created", "Created", S.created_at, sortable=True, kind="when"),
        Column("plan", "Plan", Plan.name),
        *_person("customer", _customer, "Customer", S.customer_id),
        *_person("mechanic", _mechanic, "Mechanic", S.mechanic_id, nullable=True),
        Column("status", "Status", S.status, kind="badge"),
        Column("minutes", "Minutes", S.minutes, kind="duration", csv=False),
        Column("plan_minutes", "Plan minutes", S.minutes, show=False),
        Column("duration", "Minutes used", sa.null(), show=False, csv=_duration_csv),
        Column("started_at", "Started", S.started_at, show=False),
        Column("ended_at", "Ended", S.ended_at, show=False),
        Column("rating", "Rating", S.rating, kind="rating"),
    ),
    choices=(_status_choice(S.status, SESSION_STATUSES), _plan_choice(S.plan_id)),
    people=(S.customer_id, S.mechanic_id), ids=(S.id,),
    search_hint="Customer or mechanic name, email, #session",
)

REQUESTS = TableSpec(
    name="requests", title="Requests", noun="requests",
    page_from=lambda: R.__table__,
    select_from=lambda: R.__table__.join(S, S.id == R.session_id).join(Plan, Plan.id == S.plan_id)
    .join(_customer, _customer.id == R.customer_id),
    date_expr=R.created_at,
    columns=(
        Column("id", "#", R.id, sortable=True, kind="id", link=_link("admin.session_show", "session_id")),
        Column("session_id", "Session", R.session_id, kind="id", link=_session_link),
        *_person("customer", _customer, "Customer", R.customer_id),
        Column("status", "Status", R.status, kind="badge"),
        Column("plan", "Plan", Plan.name),
        Column("created", "Created", R.created_at, sortable=True, kind="when"),
        Column("accepted", "Accepted", R.accepted_at, kind="when"),
        Column("closed", "Closed", R.closed_at, kind="when"),
        Column("reason", "Reason", R.close_reason),
    ),
    choices=(
        _status_choice(R.status, REQUEST_STATUSES),
        Choice("plan", "Plan", _plans,
               lambda code: sa.exists().where(S.id == R.session_id, S.plan_id == _plan_id(code))),
    ),
    people=(R.customer_id,), ids=(R.id, R.session_id),
    search_hint="Customer name, email, #request or #session",
)


_has_session = sa.exists().where(S.intake_id == N.id)


def _vehicle_csv(row):
    return f"{row['vehicle_year']} {row['vehicle_make']} {row['vehicle_model']}" if row["vehicle_make"] else None


INTAKES = TableSpec(
    name="intakes", title="Intakes", noun="intakes",
    page_from=lambda: N.__table__,
    select_from=lambda: N.__table__.join(Plan, Plan.id == N.plan_id).join(_customer, _customer.id == N.customer_id)
    .outerjoin(Vehicle, Vehicle.id == N.vehicle_id).outerjoin(S, S.intake_id == N.id),
    date_expr=N.created_at,
    columns=(
        Column("id", "#", N.id, sortable=True, kind="id",
               link=_first_link(_session_link, _link("admin.user_show", "customer_id"))),
        Column("created", "Created", N.created_at, sortable=True, kind="when"),
        *_person("customer", _customer, "Customer", N.customer_id),
        Column("plan", "Plan", Plan.name),
        Column("vehicle", "Vehicle", Vehicle.make, kind="vehicle", csv=_vehicle_csv, nullable=True),
        Column("vehicle_year", "Year", Vehicle.year, show=False, csv=False),
        Column("vehicle_make", "Make", Vehicle.make, show=False, csv=False),
        Column("vehicle_model", "Model", Vehicle.model, show=False, csv=False),
        Column("city", "City", N.city, kind="place"),
        Column("country", "Country", N.country, show=False),
        Column("concern", "Concern", sa.func.substr(N.concern, 1, 120), kind="excerpt"),
        Column("session_id", "Session", S.id, kind="id", link=_session_link, nullable=True),
    ),
    choices=(
        _plan_choice(N.plan_id),
        Choice("paid", "Session", lambda: [("yes", "With a session"), ("no", "Without a session")],
               lambda value: _has_session if value == "yes" else ~_has_session),
    ),
    people=(N.customer_id,), ids=(N.id,),
    search_hint="Customer name, email or #intake",
)

_session_count = (sa.select(sa.func.count()).select_from(S.__table__).where(S.customer_id == User.id)
                  .correlate(User).scalar_subquery())
CUSTOMERS = TableSpec(
    name="customers", title="Customers", noun="customers",
    page_from=lambda: User.__table__,
    select_from=lambda: User.__table__,
    where=(User.role == "customer",),
    date_expr=User.created_at,
    columns=(
        Column("id", "#", User.id, sortable=True, kind="id", link=_link("admin.user_show", "id")),
        Column("name", "Name", User.full_name, link=_link("admin.user_show", "id")),
        Column("email", "Email", User.email),
        Column("status", "Status", User.status, kind="badge"),
        Column("verified", "Email verified", User.email_verified_at, kind="verified"),
        Column("created", "Joined", User.created_at, sortable=True, kind="when"),
        Column("sessions", "Sessions", _session_count, kind="number"),
    ),
    choices=(_status_choice(User.status, USER_STATUSES),),
    text=(User.email, User.full_name), ids=(User.id,),
)

_application = sa.case((MechanicProfile.approved, "approved"),
                       (MechanicProfile.rejection_reason.is_not(None), "rejected"), else_="pending")
_rating = sa.case((MechanicProfile.rating_count > 0,
                   sa.cast(MechanicProfile.rating_sum, sa.Float) / MechanicProfile.rating_count), else_=None)
_APPLICATION_CLAUSES = {
    "approved": MechanicProfile.approved.is_(True),
    "rejected": sa.and_(MechanicProfile.approved.is_(False), MechanicProfile.rejection_reason.is_not(None)),
    "pending": sa.and_(MechanicProfile.approved.is_(False), MechanicProfile.rejection_reason.is_(None)),
}
MECHANICS = TableSpec(
    name="mechanics", title="Mechanics", noun="mechanics",
    page_from=lambda: User.__table__.join(MechanicProfile, MechanicProfile.user_id == User.id),
    select_from=lambda: User.__table__.join(MechanicProfile, MechanicProfile.user_id == User.id),
    where=(User.role == "mechanic",),
    date_expr=User.created_at,
    columns=(
        Column("id", "#", User.id, sortable=True, kind="id", link=_link("admin.user_show", "id")),
        Column("name", "Name", User.full_name, link=_link("admin.user_show", "id")),
        Column("email", "Email", User.email),
        Column("status", "Status", User.status, sortable=True, kind="badge"),
        Column("application", "Application", _application, kind="badge",
               link=_link("admin.application_show", "id")),
        Column("presence", "Presence", MechanicProfile.presence, kind="badge"),
        Column("rating", "Rating", sa.type_coerce(_rating, sa.Float), sortable=True, kind="rating", nullable=True),
        Column("completed", "Completed sessions", MechanicProfile.completed_sessions, sortable=True, kind="number"),
        Column("created", "Joined", User.created_at, sortable=True, kind="when"),
    ),
    choices=(
        _status_choice(User.status, USER_STATUSES),
        Choice("application", "Application", lambda: [(k, k.capitalize()) for k in _APPLICATION_CLAUSES],
               lambda value: _APPLICATION_CLAUSES[value]),
        Choice("presence", "Presence", lambda: [("online", "Online"), ("offline", "Offline")],
               lambda value: MechanicProfile.presence == value),
    ),
    text=(User.email, User.full_name), ids=(User.id,),
)

PAYMENTS = TableSpec(
    name="payments", title="Payments", noun="payments",
    page_from=lambda: Y.__table__,
    select_from=lambda: Y.__table__.join(Plan, Plan.id == Y.plan_id).join(_customer, _customer.id == Y.customer_id),
    date_expr=Y.created_at,
    columns=(
        Column("id", "#", Y.id, sortable=True, kind="id",
               link=_first_link(_session_link, _link("admin.user_show", "customer_id"))),
        Column("created", "Created", Y.created_at, sortable=True, kind="when"),
        *_person("customer", _customer, "Customer", Y.customer_id),
        Column("purpose", "Purpose", Y.purpose),
        Column("plan", "Plan", Plan.name),
        Column("amount", "Amount (USD)", Y.amount_cents, kind="money"),
        Column("credit", "Credit (USD)", Y.credit_cents, kind="credit"),
        Column("status", "Status", Y.status, kind="badge"),
        Column("provider", "Provider", Y.provider),
        Column("session_id", "Session", Y.session_id, kind="id", link=_session_link),
    ),
    choices=(
        _status_choice(Y.status, PAYMENT_STATUSES),
        _plan_choice(Y.plan_id),
        Choice("purpose", "Purpose", lambda: [(p, p.capitalize()) for p in PAYMENT_PURPOSES],
               lambda value: Y.purpose == value),
    ),
    people=(Y.customer_id,), ids=(Y.id,),
    search_hint="Customer name, email or #payment",
)

# Where an audit row's target lives: (endpoint, the row key holding its id).
AUDIT_TARGETS = {
    "session": ("admin.session_show", "target_id"),
    "request": ("admin.session_show", "target_session_id"),
    "user": ("admin.user_show", "target_id"),
    "mechanic": ("admin.user_show", "target_id"),
    "application": ("admin.application_show", "target_id"),
    "plan": ("admin.plans_index", None),
    "fee_rule": ("admin.plans_index", None),
    "email": ("admin.outbox_show", "target_id"),
    "outbox": ("admin.outbox_show", "target_id"),
    "maintenance": ("admin.maintenance_index", None),
}


def audit_target_url(row):
    endpoint, key = AUDIT_TARGETS.get(row["target_type"], (None, None))
    if endpoint is None:
        return None
    if key is None:
        return url_for(endpoint)
    return _link(endpoint, key)(row)


def _audit_actors():
    acting = sa.select(A.actor_id).where(A.actor_id.is_not(None)).distinct()
    people = db.session.execute(sa.select(User.id, User.full_name).where(User.id.in_(acting))
                                .order_by(User.full_name)).all()
    return [("system", "System")] + [(str(user_id), name) for user_id, name in people]


def _actor_clause(value):
    return A.actor_id.is_(None) if value == "system" else A.actor_id == int(value)


def _distinct(expr):
    return lambda: [(v, v) for (v,) in db.session.execute(sa.select(expr).distinct().order_by(expr))]


AUDIT = TableSpec(
    name="audit", title="Audit log", noun="audit entries",
    page_from=lambda: A.__table__,
    select_from=lambda: A.__table__.outerjoin(_actor, _actor.id == A.actor_id)
    .outerjoin(_target_request, sa.and_(A.target_type == "request", _target_request.id == A.target_id)),
    date_expr=A.created_at,
    columns=(
        Column("id", "#", A.id, sortable=True, kind="id"),
        Column("created", "When", A.created_at, sortable=True, kind="when"),
        *_person("actor", _actor, "Actor", A.actor_id, nullable=True),
        Column("action", "Action", A.action, sortable=True, kind="code"),
        Column("target_type", "Target", A.target_type, kind="target", link=audit_target_url),
        Column("target_id", "Target id", A.target_id, show=False),
        Column("target_session_id", "Target session", _target_request.session_id, show=False, csv=False),
        Column("summary", "Summary", A.summary),
        Column("reason", "Reason", A.reason),
        Column("changes", "Before / after", A.id, kind="changes", csv=False),
        Column("before", "Before", A.before, show=False),
        Column("after", "After", A.after, show=False),
        Column("ip_address", "IP address", A.ip_address, show=False),
    ),
    choices=(
        Choice("action", "Action", _distinct(A.action), lambda value: A.action == value,
               valid=re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*").fullmatch),
        Choice("actor", "Actor", _audit_actors, _actor_clause,
               valid=lambda value: value == "system" or (value.isascii() and value.isdigit() and len(value) <= 9)),
        Choice("target", "Target type", _distinct(A.target_type), lambda value: A.target_type == value,
               valid=re.compile(r"[a-z0-9_]{1,30}").fullmatch),
    ),
    text=(A.summary, A.reason), ids=(A.id,),
    search_hint="Summary, reason or #entry",
)

TABLES = {spec.name: spec for spec in (REQUESTS, SESSIONS, INTAKES, CUSTOMERS, MECHANICS, PAYMENTS, AUDIT)}
