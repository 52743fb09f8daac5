"""The server's history store: ``base.Store`` is the interface, ``sql.SqlStore`` the SQLite /
PostgreSQL implementation. Imports SQLAlchemy only when ``sql`` is imported."""


def open_store(url: str) -> "object":
    """A ``SqlStore`` for ``sqlite:///FILE`` or ``postgresql://…`` (call ``await .open()``)."""
    from smokegate.store.sql import SqlStore

    return SqlStore(url)
