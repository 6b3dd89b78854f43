"""Extensions, created unbound and bound in create_app()."""
from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sock import Sock
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as _FlaskSession
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData


class Session(_FlaskSession):
    """Runs what a unit of work queued with after_commit() (publish events, enqueue jobs)
    only once that work has committed; a rollback drops it."""

    def commit(self):
        super().commit()
        self.info.pop("after_rollback_hooks", None)
        hooks = self.info.pop("after_commit_hooks", [])
        for hook in hooks:  # a hook may commit again; its own hooks run in that commit
            hook()

    def rollback(self):
        self._discard_hooks()
        super().rollback()

    def close(self):  # closing without a commit discards the work, like a rollback
        self._discard_hooks()
        super().close()

    def _discard_hooks(self):
        self.info.pop("after_commit_hooks", None)
        for hook in self.info.pop("after_rollback_hooks", []):
            hook()


def after_commit(hook):
    """Queue a callable to run after the current transaction commits."""
    db.session.info.setdefault("after_commit_hooks", []).append(hook)


def after_rollback(hook):
    """Queue a callable that undoes an outside effect (a stored file) if the transaction rolls back."""
    db.session.info.setdefault("after_rollback_hooks", []).append(hook)


naming = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
db = SQLAlchemy(metadata=MetaData(naming_convention=naming), session_options={"class_": Session})
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
sock = Sock()
compress = Compress()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
