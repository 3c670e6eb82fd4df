"""Opening SQLite files that distillprint owns (the response store, the embedding cache).

Each file is checked to be what the caller expects (or new) before anything is written to
it: an unrelated database passed by mistake is never modified, and SQLite's failures become
one ``InputError`` that names the file.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Self

from distillprint.errors import InputError

_SQLITE_READONLY = 8
_SQLITE_CORRUPT = 11
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26
Tables = dict[str, list[str]]
# SQLite caps the number of parameters one statement may bind (999 before 3.32).
PARAMETER_CHUNK = 500
#: None is autocommit; the others name the BEGIN that Python issues before a write
IsolationLevel = Literal["DEFERRED", "EXCLUSIVE", "IMMEDIATE"] | None


class _Connection(sqlite3.Connection):
    """A connection whose queries name the file when they find it damaged, as a failure to
    open it does: the damage may lie in pages that no check at opening reads."""

    path: Path
    what: str

    def cursor(self, factory: Any = None) -> Any:
        return super().cursor(factory or _Cursor)

    def execute(self, *args: Any) -> Any:
        return self.cursor().execute(*args)

    def executemany(self, *args: Any) -> Any:
        return self.cursor().executemany(*args)


class _Cursor(sqlite3.Cursor):
    """Every call that steps a statement, wrapped (``fetchall`` does not go through
    ``__next__``)."""

    def execute(self, *args: Any) -> Self:
        try:
            return super().execute(*args)
        except sqlite3.DatabaseError as error:
            raise _damage_named(error, self.connection) from None

    def executemany(self, *args: Any) -> Self:
        try:
            return super().executemany(*args)
        except sqlite3.DatabaseError as error:
            raise _damage_named(error, self.connection) from None

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.DatabaseError as error:
            raise _damage_named(error, self.connection) from None

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.DatabaseError as error:
            raise _damage_named(error, self.connection) from None

    def fetchmany(self, *args: Any) -> list[Any]:
        try:
            return super().fetchmany(*args)
        except sqlite3.DatabaseError as error:
            raise _damage_named(error, self.connection) from None

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.DatabaseError as error:
            raise _damage_named(error, self.connection) from None


def _damage_named(error: sqlite3.DatabaseError, db: sqlite3.Connection) -> Exception:
    """A damaged file as an ``InputError`` naming it; any other failure as it was."""
    if _error_code(error) != _SQLITE_CORRUPT or not isinstance(db, _Connection):
        return error
    return InputError(f"the {db.what} is damaged ({error}): `sqlite3 FILE .recover` may save "
                      "what it holds", path=db.path)


def _connect(target: str | Path, path: Path, what: str, **options: Any) -> sqlite3.Connection:
    db = sqlite3.connect(target, factory=_Connection, **options)
    db.path, db.what = path, what
    return db


def open_sqlite(
    path: Path,
    what: str,
    *,
    read_only: bool,
    timeout: float,
    isolation_level: IsolationLevel = "DEFERRED",
) -> sqlite3.Connection:
    """A connection to ``path`` that has written nothing yet: the caller first checks that the
    file is ``what`` (or new), so an unrelated database is never modified."""
    if path.is_dir():
        raise InputError(f"is a directory, not a {what}", path=path)
    if read_only and not path.exists():
        raise InputError(f"no such {what}", path=path)
    try:
        if read_only:
            return _connect_read_only(path, what, timeout, isolation_level)
        path.parent.mkdir(parents=True, exist_ok=True)
        return _connect(path, path, what, timeout=timeout, isolation_level=isolation_level)
    except sqlite3.Error as error:
        raise open_error(error, path, what, read_only=read_only) from None
    except OSError as error:  # the folder for a new file cannot be made
        raise InputError(f"cannot create the {what} ({error.strerror})", path=path) from None


def _connect_read_only(
    path: Path, what: str, timeout: float, isolation_level: IsolationLevel
) -> sqlite3.Connection:
    wal = Path(f"{path}-wal")
    if not wal.exists() and os.access(path, os.W_OK) and os.access(path.parent, os.W_OK):
        # A read-only connection to a WAL file makes its -wal and -shm files and cannot remove
        # them, so every read would leave them beside the file. A connection that may write
        # but is refused every write removes them on closing, as the last connection does.
        # Only where no -wal file exists yet: closing would copy one's pages into the file,
        # and a reader must change no byte (of a database not even ours, say).
        db = _connect(path, path, what, timeout=timeout, isolation_level=isolation_level)
        db.execute("PRAGMA query_only = ON")
        return db
    uri = f"{path.absolute().as_uri()}?mode=ro"
    db = _connect(uri, path, what, uri=True, timeout=timeout, isolation_level=isolation_level)
    try:
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError as error:
        db.close()
        # A WAL file in a read-only directory cannot get its shared-memory file. Without a
        # ``-wal`` file no writer is active, so reading it as immutable misses nothing.
        if _error_code(error) not in (_SQLITE_READONLY, _SQLITE_CANTOPEN) \
                or wal.exists():
            raise
    return _connect(f"{uri}&immutable=1", path, what, uri=True, timeout=timeout,
                    isolation_level=isolation_level)


def _error_code(error: sqlite3.Error) -> int:
    """SQLite's primary result code (extended codes keep it in their low byte)."""
    return int(getattr(error, "sqlite_errorcode", 0)) & 0xFF


def read_tables(db: sqlite3.Connection) -> Tables:
    """Each table's column names, read without writing."""
    names = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    return {name: [row[0] for row in db.execute("SELECT name FROM pragma_table_info(?)", [name])]
            for name in names}


def column_mismatch(table: str, found: Sequence[str], expected: Sequence[str]) -> str | None:
    """Why ``found`` columns cannot be read and written as ``expected``; None if they can."""
    missing = [name for name in expected if name not in found]
    extra = [name for name in found if name not in expected]
    if not missing and not extra:
        return None
    parts = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
        [f"unexpected column(s) {', '.join(extra)}"] if extra else [])
    return f"its {table} table has {'; '.join(parts)}"


def enable_wal(db: sqlite3.Connection, timeout: float) -> None:
    """Switch a (possibly new) file to WAL, waiting out other processes.

    Processes that open one new file at once (``accelerate launch`` ranks, parallel CLI runs)
    race to switch it: the switch needs an exclusive lock, and while another connection holds a
    write lock on the still rollback-journal file SQLite fails at once with "database is
    locked" instead of calling the busy handler. Retrying until the switch succeeds (WAL is
    stored in the file, so it lasts) or the open timeout passes fixes that.
    """
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def prepare(
    db: sqlite3.Connection,
    path: Path,
    what: str,
    *,
    read_only: bool,
    timeout: float,
    check: Callable[[sqlite3.Connection], None],
    statements: Sequence[str],
) -> None:
    """Check that ``db`` is ``what`` and, to write, set up its tables with ``statements``
    (idempotent); on failure close it and raise one InputError naming ``path``."""
    try:
        if read_only:
            check(db)
        else:
            _set_up(db, timeout, check, statements)
            db.execute("PRAGMA synchronous=NORMAL")
    except BaseException as error:
        db.close()
        if isinstance(error, sqlite3.Error):
            raise open_error(error, path, what, read_only=read_only) from None
        raise


def _set_up(
    db: sqlite3.Connection,
    timeout: float,
    check: Callable[[sqlite3.Connection], None],
    statements: Sequence[str],
) -> None:
    # ``check`` runs before the first write, so a foreign file is never touched, and again
    # under the write lock, since another process may have set up a new file in between.
    check(db)
    enable_wal(db, timeout)
    db.execute("BEGIN IMMEDIATE")
    try:
        check(db)
        for statement in statements:
            db.execute(statement)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def open_error(error: sqlite3.Error, path: Path, what: str, *, read_only: bool) -> InputError:
    """The user's view of SQLite failing to open or set up ``path``."""
    code = _error_code(error)
    if code == _SQLITE_READONLY and not read_only:
        return InputError(f"the {what} is read-only ({error}): this command adds to it, so it "
                          "needs write access to the file and its directory", path=path)
    if code == _SQLITE_NOTADB:
        return InputError(f"not a {what} ({error})", path=path)
    return InputError(f"cannot open the {what} ({error})", path=path)


def parameter_chunks(values: Iterable[str], size: int = PARAMETER_CHUNK) -> Iterator[list[str]]:
    """Values in lists short enough to bind in one ``IN (...)`` clause."""
    wanted = list(values)
    for start in range(0, len(wanted), size):
        yield wanted[start : start + size]
