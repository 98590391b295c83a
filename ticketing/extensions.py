"""Unbound Flask extension objects; `create_app` binds them."""
from typing import TYPE_CHECKING, ClassVar

from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.model import Model as FlaskModel
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, Table
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names so that migrations agree on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    if TYPE_CHECKING:
        # SQLAlchemy types it as any FromClause; every model here maps one Table.
        __table__: ClassVar[Table]


db = SQLAlchemy(model_class=Base)

# The base class of every model. At run time it is `db.Model`; mypy cannot take an
# attribute of an object as a base class, so it checks the models against what
# Flask-SQLAlchemy builds `db.Model` from: its own Model mixed into Base.
if TYPE_CHECKING:

    class Model(FlaskModel, Base):
        """What `db.Model` is, as the type checker sees it."""

else:
    Model = db.Model

migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
