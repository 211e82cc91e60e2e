"""The durable store: spaces kept in a SQLite file.

``sqlite:///var/lib/app/spaces.db?space=jobs`` opens the space ``jobs`` in that
file (``sqlite:data/spaces.db?space=jobs`` for a path relative to the working
directory); one file holds many spaces.  The file is opened once per process,
with an exclusive lock: a second process gets a clear :class:`StoreError`, never
a silent second copy of the same tuples.

Layout (schema version 8; ``PRAGMA application_id`` marks the file as ours)::

    spaces(name PRIMARY KEY, last_seq, last_event, options)   -- high-water marks of the numbers
    tuples(space, seq, data, expires, PRIMARY KEY (space, seq)) WITHOUT ROWID
    records(space, rid, path, fields, version, credit, since, expires, PRIMARY KEY (space, rid))
    accounts(space, principal, balance, PRIMARY KEY (space, principal))
    capabilities(space, token, rid, operations, expires, read_only, PRIMARY KEY (space, token))
    redirections(space, path, rid, expires, PRIMARY KEY (space, path))
    catalog(name PRIMARY KEY, retired, entry)                -- a server's spaces (:class:`Catalog`)
    rules(space, name, definition, PRIMARY KEY (space, name))  -- schema version 4
    rule_counts(space, name, fired, failed, last_error, stopped,
                PRIMARY KEY (space, name))                  -- schema version 6

``options`` are the space's options as JSON: those it was made with, each changed in
place as it is changed on the open space (``space.rules.firing_charge = ...``).
``data`` is the tuple's canonical wire encoding, ``expires`` the absolute expiry
time of its lease (NULL: forever) and ``seq`` its place in the order.  A record's
``fields`` are the canonical encoding of its fields as a map; ``credit`` (decimal
text) is what it held at the time ``since``.  At start, the engine's indexes are
rebuilt from these rows; what ran out while the process was down is deleted (a
tuple or record expires then, with its event, once the space's rules are loaded).

Durability (``?durability=``): ``normal`` (the default) writes through SQLite's
write-ahead log with ``synchronous=NORMAL``: every acknowledged operation survives
the process being killed at any moment; a power loss may lose the last few
acknowledged operations, never corrupt the file.  ``full`` adds an fsync to every
commit, so acknowledged operations also survive a power loss.  Either way,
operations from many threads are committed in groups: one commit for all that
arrived while the previous one was being written.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson

from ._aio import AsyncSpace
from ._codec import decode, encode
from ._committer import Committer
from ._credit import CREDIT_OPTIONS
from ._errors import InvalidValue, StoreError, WireError
from ._methods import MAX_FIRINGS, METHOD_MEMORY, METHOD_MS, METHOD_STEPS
from ._recordstore import DEFAULT_MINT_BITS, DEFAULT_OPERATOR
from ._schemes import SPACE_OPTIONS, Scheme, url_options
from ._space import Space
from ._store import (
    AccountRow,
    CapabilityRow,
    Changes,
    Hosted,
    OptionRow,
    RecordRow,
    RedirectRow,
    Row,
    RuleCountRow,
    RuleRow,
    SpaceRows,
    options_conflict,
)
from ._values import Credit, Limits, Map, Tuple

try:
    import fcntl
except ImportError:  # Windows: SQLite's own lock still keeps a second server out
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DURABILITY",
    "SCHEMA_VERSION",
    "SCHEME",
    "Catalog",
    "SqliteHost",
    "open_catalog",
    "open_space",
]

logger = logging.getLogger("tuplespace")
_R = TypeVar("_R")

APPLICATION_ID = 0x54535043  # "TSPC"
SCHEMA_VERSION = 8
DURABILITY = {"normal": "NORMAL", "full": "FULL"}
_STORED_OPTIONS = (
    "order",
    "capacity",
    "charge_rate",
    "creation_charge",
    "operator",
    "mint_amount",
    "mint_bits",
    "redirect_charge",
    "firing_charge",
    "step_charge",
    "max_firings",
    "method_steps",
    "method_ms",
    "method_memory",
)
# Of the space's rules.limits (an ActiveLimits).
_ACTIVE_LIMITS = frozenset(("max_firings", "method_steps", "method_ms", "method_memory"))
_CREDIT_OPTIONS = frozenset(CREDIT_OPTIONS)  # stored as decimal text
# What older files lack.
_OLDER_OPTIONS = {
    **dict.fromkeys(_CREDIT_OPTIONS, "0"),
    "operator": DEFAULT_OPERATOR,
    "mint_bits": DEFAULT_MINT_BITS,
    "max_firings": MAX_FIRINGS,
    "method_steps": METHOD_STEPS,
    "method_ms": METHOD_MS,
    "method_memory": METHOD_MEMORY,
}


def _create_v1(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE spaces (name TEXT PRIMARY KEY, last_seq INTEGER NOT NULL,"
        " last_event INTEGER NOT NULL, options TEXT NOT NULL)"
    )
    db.execute(
        "CREATE TABLE tuples (space TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,"
        " expires REAL, PRIMARY KEY (space, seq)) WITHOUT ROWID"
    )


def _add_records_v2(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE records (space TEXT NOT NULL, rid INTEGER NOT NULL, path TEXT NOT NULL,"
        " fields BLOB NOT NULL, version INTEGER NOT NULL, credit TEXT NOT NULL, since REAL NOT NULL,"
        " expires REAL, PRIMARY KEY (space, rid)) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TABLE accounts (space TEXT NOT NULL, principal TEXT NOT NULL, balance TEXT NOT NULL,"
        " PRIMARY KEY (space, principal)) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TABLE capabilities (space TEXT NOT NULL, token TEXT NOT NULL, rid INTEGER NOT NULL,"
        " operations TEXT NOT NULL, expires REAL, read_only INTEGER NOT NULL,"
        " PRIMARY KEY (space, token)) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TABLE redirections (space TEXT NOT NULL, path TEXT NOT NULL, rid INTEGER NOT NULL,"
        " expires REAL, PRIMARY KEY (space, path)) WITHOUT ROWID"
    )


def _add_catalog_v3(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE catalog (name TEXT PRIMARY KEY, retired INTEGER NOT NULL, entry TEXT) WITHOUT ROWID"
    )


def _add_rules_v4(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE rules (space TEXT NOT NULL, name TEXT NOT NULL, definition TEXT NOT NULL,"
        " PRIMARY KEY (space, name)) WITHOUT ROWID"
    )


def _add_moved_to_v5(db: sqlite3.Connection) -> None:
    """Redirections to another node: the record's address there (NULL: in the space)."""
    db.execute("ALTER TABLE redirections ADD COLUMN moved_to TEXT")


def _add_rule_counts_v6(db: sqlite3.Connection) -> None:
    """What each rule did (its counts, latest failure and state), kept across restarts."""
    db.execute(
        "CREATE TABLE rule_counts (space TEXT NOT NULL, name TEXT NOT NULL, fired INTEGER NOT NULL,"
        " failed INTEGER NOT NULL, last_error TEXT, stopped INTEGER NOT NULL,"
        " PRIMARY KEY (space, name)) WITHOUT ROWID"
    )


def _add_changed_options_v7(db: sqlite3.Connection) -> None:
    """The options changed on an open space, which it keeps from then on."""
    db.execute(
        "CREATE TABLE changed_options (space TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,"
        " PRIMARY KEY (space, name)) WITHOUT ROWID"
    )


def _fold_changed_options_v8(db: sqlite3.Connection) -> None:
    """The changed options written into each space's ``options``: one table fewer."""
    db.execute(
        "UPDATE spaces SET options = (SELECT json_patch(spaces.options, json_group_object(name, json(value)))"
        " FROM changed_options WHERE space = spaces.name)"
        " WHERE name IN (SELECT space FROM changed_options)"
    )
    db.execute("DROP TABLE changed_options")


# MIGRATIONS[v] brings a file from schema version v to v + 1.
MIGRATIONS = {
    0: _create_v1,
    1: _add_records_v2,
    2: _add_catalog_v3,
    3: _add_rules_v4,
    4: _add_moved_to_v5,
    5: _add_rule_counts_v6,
    6: _add_changed_options_v7,
    7: _fold_changed_options_v8,
}

# Where each kind of row is kept: (table, its key column).
_TABLES: dict[type[Row], tuple[str, str]] = {
    RecordRow: ("records", "rid"),
    AccountRow: ("accounts", "principal"),
    CapabilityRow: ("capabilities", "token"),
    RedirectRow: ("redirections", "path"),
    RuleRow: ("rules", "name"),
    RuleCountRow: ("rule_counts", "name"),
}
# The tables holding the rows of a space (and ``spaces``, its numbers and options,
# where an :class:`OptionRow` is written).
_SPACE_TABLES = ("tuples", *(table for table, _ in _TABLES.values()))


class _File:
    """One SQLite file, open in this process, the spaces in it and their committer
    (a :class:`~tuplespace._store.RowStore`)."""

    def __init__(self, path: str, durability: str) -> None:
        self.path = self.label = path
        self.durability = durability
        self.catalogs = 0  # open catalogs, which keep the file open as spaces do
        # One transaction at a time on the connection: the committer's, or a catalog's.
        self.lock = threading.Lock()
        try:
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {path}: {exc}") from exc
        try:
            self._prepare()
        except BaseException:
            self.db.close()
            raise
        self.committer = Committer(self)
        self.spaces = self.committer.spaces

    def _prepare(self) -> None:
        db = self.db
        try:
            db.execute("PRAGMA locking_mode = EXCLUSIVE")
            db.execute("BEGIN IMMEDIATE")  # takes the lock and keeps it
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise StoreError(f"{self.path} is in use by another process") from None
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a PyTupleSpace store (or it is damaged): {exc}") from None
        try:
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app_id != APPLICATION_ID and (app_id != 0 or tables):
                raise StoreError(f"{self.path} is not a PyTupleSpace store; it was left untouched")
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {version}, newer than this version of "
                    f"PyTupleSpace knows ({SCHEMA_VERSION}); it was left untouched"
                )
            # SQLite reads a damaged b-tree without complaint, skipping rows: look first.
            problems = db.execute("PRAGMA quick_check(1)").fetchall()
            if problems != [("ok",)]:
                raise StoreError(f"{self.path} is damaged ({problems[0][0]}); it was left untouched")
            if version < SCHEMA_VERSION:  # only a new file or an older schema is written to here
                for v in range(version, SCHEMA_VERSION):
                    MIGRATIONS[v](db)
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StoreError(f"{self.path} is damaged or not a PyTupleSpace store: {exc}") from None
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StoreError(f"{self.path}: SQLite refused write-ahead logging (journal_mode={mode})")
        db.execute(f"PRAGMA synchronous = {DURABILITY[self.durability]}")

    # -- spaces -------------------------------------------------------------------

    def open(
        self, name: str, options: dict[str, Any], served: str, listing: tuple[str, int, str] | None = None
    ) -> Space:
        """The space ``name``, made if there is none, going by ``served``; ``listing``: the
        row of the catalog that names it, written in the transaction that makes its row
        of ``spaces``."""
        self.committer.check()
        if name in self.spaces:
            space = self.spaces[name][0]
            if not space.core.engine.closed:
                _check_options(name, options, _options_of(space))
                if listing is not None:
                    with self.lock:
                        self.run([("INSERT OR REPLACE INTO catalog VALUES (?, ?, ?)", [listing])])
                return space
        with self.lock:  # the row is made in a transaction of its own, not in a commit under way
            try:
                row = self.db.execute(
                    "SELECT last_seq, last_event, options FROM spaces WHERE name = ?", (name,)
                ).fetchone()
            except sqlite3.DatabaseError as exc:
                raise self._damaged(exc) from None
            statements: list[tuple[str, list[tuple[Any, ...]]]] = []
            if row is None:
                space = Space(**options, name=served)
                text = orjson.dumps(_options_of(space)).decode()
                statements.append(("INSERT INTO spaces VALUES (?, 0, 0, ?)", [(name, text)]))
                last_seq = last_event = 0
            else:
                last_seq, last_event, text = row
                stored = {**_OLDER_OPTIONS, **orjson.loads(text)}
                _check_options(name, options, stored)
                space = Space(**{**options, **stored}, name=served)
            if listing is not None:
                statements.append(("INSERT OR REPLACE INTO catalog VALUES (?, ?, ?)", [listing]))
            self.run(statements)  # the space's row and its catalog row, both or neither
        rows = SpaceRows(
            last_seq,
            last_event,
            self._tuples(name, space.limits),
            self._records(name, space.limits),
            self._read(name, "SELECT principal, balance FROM accounts WHERE space = ?", AccountRow._make),
            self._read(
                name,
                "SELECT token, rid, operations, expires, read_only FROM capabilities WHERE space = ?",
                CapabilityRow._make,
            ),
            self._read(
                name,
                "SELECT path, rid, expires, moved_to FROM redirections WHERE space = ?",
                RedirectRow._make,
            ),
            *self._rules(name),
        )
        self.committer.attach(name, space, rows, lambda: self._detach(name, space))
        return space

    def run(self, statements: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        """Run each ``(sql, rows)`` of ``statements`` in one transaction (with ``lock`` held)."""
        if not statements:
            return
        db = self.db
        db.execute("BEGIN")
        try:
            for sql, rows in statements:
                db.executemany(sql, rows)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _read(self, name: str, sql: str, make: Callable[[Any], _R]) -> Iterator[_R]:
        """The rows of space ``name`` that ``sql`` selects, each made by ``make``."""
        try:
            for row in self.db.execute(sql, (name,)):
                yield make(row)
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None

    def _rules(self, name: str) -> tuple[list[RuleRow], list[RuleCountRow]]:
        """The rules of space ``name`` by name, and what those that did anything did."""
        rules: list[RuleRow] = []
        counts: list[RuleCountRow] = []
        sql = (
            "SELECT rules.name, definition, fired, failed, last_error, stopped FROM rules"
            " LEFT JOIN rule_counts AS c ON c.space = rules.space AND c.name = rules.name"
            " WHERE rules.space = ? ORDER BY rules.name"
        )
        for rule, definition, *did in self._read(name, sql, tuple):
            rules.append(RuleRow(rule, definition))
            if did[0] is not None:
                counts.append(RuleCountRow(rule, *did))
        return rules, counts

    def _damaged(self, exc: sqlite3.DatabaseError) -> StoreError:
        return StoreError(f"{self.path} is damaged: {exc}")

    def _tuples(self, name: str, limits: Limits) -> Iterator[tuple[int, Tuple, float | None]]:
        """As :meth:`_read` would, in one loop, as plain tuples: a space may hold millions."""
        sql = "SELECT seq, data, expires FROM tuples WHERE space = ? ORDER BY seq"
        try:
            for seq, data, expires in self.db.execute(sql, (name,)):
                try:
                    t = decode(data, limits)
                except WireError as exc:
                    raise StoreError(
                        f"{self.path} is damaged: tuple {seq} of space {name!r}: {exc}"
                    ) from None
                yield seq, t, expires
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None

    def _records(self, name: str, limits: Limits) -> Iterator[RecordRow]:
        sql = (
            "SELECT rid, path, fields, version, credit, since, expires FROM records WHERE space = ?"
            " ORDER BY rid"
        )
        for rid, path, data, version, credit, since, expires in self._read(name, sql, tuple):
            try:
                fields = decode(data, limits)
            except WireError as exc:
                raise StoreError(
                    f"{self.path} is damaged: record {path!r} of space {name!r}: {exc}"
                ) from None
            if not isinstance(fields, Map):
                raise StoreError(f"{self.path} is damaged: record {path!r} of space {name!r} holds no map")
            yield RecordRow(rid, path, fields, version, credit, since, expires)

    def _detach(self, name: str, space: Space) -> None:
        entry = self.spaces.get(name)
        if entry is None or entry[0] is not space:  # closed before: this name may be open anew
            return
        try:
            self.committer.detach(name)  # raises StoreError if the store failed
        finally:
            with _FILES_LOCK:
                self.committer.forget(name)
                self.release_if_unused()

    def release_if_unused(self) -> None:
        """Release the file once no space and no catalog has it open (with
        ``_FILES_LOCK`` held), before another thread may open it anew."""
        if not self.spaces and not self.catalogs:
            self.committer.stop()
            self.db.close()
            del _FILES[self.path]

    # -- writing ------------------------------------------------------------------------

    def write(self, batch: Sequence[Changes]) -> None:
        """Write the changes of a batch of the committer in one transaction."""
        db = self.db
        with self.lock:
            db.execute("BEGIN")
            try:
                for changes in batch:
                    name = changes.space
                    puts = [
                        (name, seq, encode(row[0]), row[1])
                        for seq, row in changes.tuples.items()
                        if row is not None
                    ]
                    deletes = [(name, seq) for seq, row in changes.tuples.items() if row is None]
                    if puts:
                        db.executemany("INSERT OR REPLACE INTO tuples VALUES (?, ?, ?, ?)", puts)
                    if deletes:
                        db.executemany("DELETE FROM tuples WHERE space = ? AND seq = ?", deletes)
                    if changes.rows:
                        _write_rows(db, name, changes.rows)
                    if changes.marks:
                        db.execute(
                            "UPDATE spaces SET last_seq = ?, last_event = ? WHERE name = ?",
                            (*changes.marks, name),
                        )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise


def _write_rows(db: sqlite3.Connection, name: str, rows: Mapping[tuple[type[Row], Any], Row | None]) -> None:
    """Write the journaled rows of records, accounts, capabilities, redirections, rules,
    rule counts and changed options."""
    puts: dict[type[Row], list[tuple[Any, ...]]] = {}
    deletes: dict[type[Row], list[tuple[str, Any]]] = {}
    options: list[tuple[str, str, str]] = []
    for (kind, key), row in rows.items():
        if row is None:
            deletes.setdefault(kind, []).append((name, key))
        elif type(row) is OptionRow:
            options.append(("$." + row.name, row.value, name))
        elif type(row) is RecordRow:
            puts.setdefault(kind, []).append((name, row.rid, row.path, encode(row.fields), *row[3:]))
        else:
            puts.setdefault(kind, []).append((name, *row))
    for kind, keys in deletes.items():
        table, key_column = _TABLES[kind]
        db.executemany(f"DELETE FROM {table} WHERE space = ? AND {key_column} = ?", keys)
    for kind, values in puts.items():
        table, _ = _TABLES[kind]
        marks = ", ".join("?" * (len(kind._fields) + 1))
        db.executemany(f"INSERT OR REPLACE INTO {table} VALUES ({marks})", values)
    if options:
        db.executemany("UPDATE spaces SET options = json_set(options, ?, json(?)) WHERE name = ?", options)


def _options_of(space: Space) -> dict[str, Any]:
    """The options stored with a space (credit amounts as decimal text)."""
    limits = space.core.active[2]  # without making the rules of a space that has none
    return {
        k: str(getattr(space, k))
        if k in _CREDIT_OPTIONS
        else getattr(limits if k in _ACTIVE_LIMITS else space, k)
        for k in _STORED_OPTIONS
    }


def _same(key: str, given: Any, stored: Any) -> bool:
    if key in _CREDIT_OPTIONS:
        try:
            return Credit(str(given)) == Credit(str(stored))
        except InvalidValue:
            return False
    return bool(given == stored)


def _check_options(name: str, given: dict[str, Any], stored: dict[str, Any]) -> None:
    for key in _STORED_OPTIONS:
        if key in given and not _same(key, given[key], stored.get(key)):
            raise options_conflict(name, key, repr(stored.get(key)), repr(given[key]))


_FILES: dict[str, _File] = {}
_FILES_LOCK = threading.Lock()


def open_space(
    path: str, name: str = "default", durability: str = "normal", served: str | None = None, **options: Any
) -> Space:
    """Open (or create) the space ``name`` in the SQLite file at ``path``; ``served`` is
    the name it goes by, which its records' addresses carry (``name`` unless given: a
    server stores a space made anew under a deleted name under another)."""
    if durability not in DURABILITY:
        raise ValueError(f"durability must be one of {', '.join(DURABILITY)}, got {durability!r}")
    if not name:
        raise ValueError("a space needs a name")
    key = os.path.realpath(path)
    with _FILES_LOCK:
        file = _FILES.get(key)
        if file is None:
            directory = os.path.dirname(key)
            if directory and not os.path.isdir(directory):
                raise StoreError(f"cannot create {path}: the directory {directory} does not exist")
            file = _FILES[key] = _File(key, durability)
        elif file.durability != durability:
            raise ValueError(f"{path} is already open with durability={file.durability}")
        try:
            return file.open(name, options, served or name)
        except BaseException:
            file.release_if_unused()  # the file was opened for this space only
            raise


class Catalog:
    """The spaces a server hosts in a store's file, one row each: a space's name,
    its ``entry`` (a JSON object: the name it is stored under and the options the
    server keeps for it), and how many times the name was deleted (``retired``: a
    space made anew under a deleted name is stored under a new name, so it starts
    empty).  A space is added with its row of ``spaces`` in one transaction
    (:meth:`create`), and deleted with its rows of every table in one.

    Made by :func:`open_catalog`; it keeps the file open until :meth:`close`.
    """

    def __init__(self, file: _File) -> None:
        self._file: _File | None = file

    def _run(self, statements: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        """Run each ``(sql, rows)`` of ``statements``, in one transaction."""
        file = self._file
        if file is None:
            raise StoreError("the catalog is closed")
        file.committer.check()
        with file.lock:
            file.run(statements)

    def read(self) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
        """The entries of the spaces, by name, and the deletions of each name deleted."""
        assert self._file is not None
        entries: dict[str, dict[str, Any]] = {}
        retired: dict[str, int] = {}
        with self._file.lock:
            try:
                for name, times, entry in self._file.db.execute("SELECT name, retired, entry FROM catalog"):
                    if times:
                        retired[name] = times
                    if entry is not None:
                        entries[name] = orjson.loads(entry)
            except (sqlite3.DatabaseError, orjson.JSONDecodeError) as exc:
                raise StoreError(f"{self._file.path}: the catalog is damaged: {exc}") from None
        return entries, retired

    def put(self, entries: dict[str, dict[str, Any] | None], retired: dict[str, int]) -> None:
        """Write the rows of ``entries`` (None: the name has no space) in one transaction;
        ``retired`` gives the deletions of each name (0 if absent)."""
        rows = [
            (name, retired.get(name, 0), None if entry is None else orjson.dumps(entry).decode())
            for name, entry in entries.items()
        ]
        self._run([("INSERT OR REPLACE INTO catalog VALUES (?, ?, ?)", rows)])

    def create(self, name: str, entry: dict[str, Any], retired: int, options: dict[str, Any]) -> Space:
        """Open the space of the new ``entry`` of ``name`` (stored under its ``storage``),
        whose name was deleted ``retired`` times: its row of ``spaces`` and its catalog
        row are written in one transaction, so a failure (or a kill) between them
        leaves neither behind for a later space of that name."""
        return self._open(name, entry, options, (name, retired, orjson.dumps(entry).decode()))

    def open(self, name: str, entry: dict[str, Any], options: dict[str, Any]) -> Space:
        """Open the space ``name`` of the catalog's ``entry`` (stored under its ``storage``)."""
        return self._open(name, entry, options, None)

    def _open(
        self, name: str, entry: dict[str, Any], options: dict[str, Any], listing: tuple[str, int, str] | None
    ) -> Space:
        file = self._file
        if file is None:
            raise StoreError("the catalog is closed")
        with _FILES_LOCK:
            return file.open(entry["storage"], options, name, listing)

    def drop(self, name: str, storage: str, retired: int) -> None:
        """Delete the space ``name``, stored as ``storage`` (closed): its rows of every
        table, and its entry, noting that the name was deleted ``retired`` times, in
        one transaction."""
        self._run(
            [(f"DELETE FROM {table} WHERE space = ?", [(storage,)]) for table in _SPACE_TABLES]
            + [
                ("DELETE FROM spaces WHERE name = ?", [(storage,)]),
                ("INSERT OR REPLACE INTO catalog VALUES (?, ?, NULL)", [(name, retired)]),
            ]
        )

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            with _FILES_LOCK:
                file.catalogs -= 1
                file.release_if_unused()


def open_catalog(path: str, durability: str = "normal") -> Catalog:
    """The :class:`Catalog` of the SQLite file at ``path`` (created if need be)."""
    key = os.path.realpath(path)
    with _FILES_LOCK:
        file = _FILES.get(key)
        if file is None:
            file = _FILES[key] = _File(key, durability)
        file.catalogs += 1
        return Catalog(file)


# -- the scheme: sqlite:PATH -------------------------------------------------------------------


def _path(url: str) -> str:
    parts = urlsplit(url)
    path = parts.netloc + parts.path
    if not path:
        raise ValueError(f"{url!r} names no file: write sqlite:///absolute/path.db or sqlite:relative.db")
    return path


def connect(url: str, options: dict[str, Any]) -> Space:
    """The space ``space`` (default ``default``) of the file ``url`` names, with the
    options of ``url`` and ``options`` (which win)."""
    merged = {**url_options(urlsplit(url).query), **options}
    path = _path(url)
    return open_space(path, merged.pop("space", "default"), merged.pop("durability", "normal"), **merged)


async def connect_async(url: str, options: dict[str, Any]) -> AsyncSpace:
    # Opening a space reads its file: done in a thread, off the event loop.
    return AsyncSpace(await asyncio.to_thread(connect, url, options))


class SqliteHost:
    """A server's spaces in one SQLite file, listed by its catalog table.

    While the server runs it holds an exclusive lock on ``lock`` beside the file, so a
    second server on the same directory fails at once with a clear error.  A catalog
    of an earlier version, ``spaces.json`` beside the file, is moved into the table
    on start (and kept as ``spaces.json.migrated``).  A space made anew under a
    deleted name is stored as ``name~N`` (``N``: the times the name was deleted), so
    it starts empty.  Its spaces run on the system clock.
    """

    simulated_clock = False

    def __init__(self, url: str, limits: Limits, base_uri: str) -> None:
        query = url_options(urlsplit(url).query)
        unknown = sorted(set(query) - {"durability"})
        if unknown:
            raise ValueError(f"{url!r}: a server's SQLite store takes only durability=, not {unknown[0]}")
        self.path = _path(url)
        self._durability = query.get("durability", "normal")
        if self._durability not in DURABILITY:
            raise ValueError(f"durability must be one of {', '.join(DURABILITY)}, got {self._durability!r}")
        self.directory = os.path.dirname(self.path) or "."
        self.label = f"the SQLite file {self.path}"
        self._limits = limits
        self._base_uri = base_uri
        self._lock_fd: int | None = None
        self._catalog: Catalog | None = None
        self._retired: dict[str, int] = {}
        self._storage: dict[str, str] = {}  # the name each open space is stored under

    def catalog(self) -> dict[str, dict[str, Any]]:
        os.makedirs(self.directory, exist_ok=True)
        self._lock_directory()
        self._catalog = open_catalog(self.path, self._durability)
        old = os.path.join(self.directory, "spaces.json")
        if os.path.exists(old):
            self._migrate(self._catalog, old)
        entries, self._retired = self._catalog.read()
        return entries

    def _lock_directory(self) -> None:
        path = os.path.join(self.directory, "lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(f"{self.directory} is in use by another server") from None
        self._lock_fd = fd

    def _migrate(self, catalog: Catalog, path: str) -> None:
        """Move the entries of ``spaces.json`` into the catalog table (again, if the
        server stopped before the file was renamed: the rows are the same)."""
        try:
            with open(path, "rb") as f:
                old = orjson.loads(f.read())
            entries: dict[str, dict[str, Any] | None] = dict(old["spaces"])
            retired = {str(name): int(times) for name, times in old.get("retired", {}).items()}
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RuntimeError(f"cannot read the catalog {path}: {exc}") from None
        for name in retired:
            entries.setdefault(name, None)
        catalog.put(entries, retired)
        os.replace(path, path + ".migrated")
        logger.info("moved the catalog of %d spaces from %s into %s", len(old["spaces"]), path, self.path)

    def open(self, name: str, entry: dict[str, Any], new: bool) -> tuple[Hosted, dict[str, Any] | None]:
        if new:
            generation = self._retired.get(name, 0)
            entry = {**entry, "storage": name if generation == 0 else f"{name}~{generation}"}
        options = {k: entry[k] for k in SPACE_OPTIONS if k in entry}
        options.update(limits=self._limits, base_uri=self._base_uri)
        assert self._catalog is not None
        if new:
            space = self._catalog.create(name, entry, self._retired.get(name, 0), options)
        else:
            space = self._catalog.open(name, entry, options)
        self._storage[name] = entry["storage"]
        return Hosted(AsyncSpace(space), space), None

    def drop(self, name: str, hosted: Hosted) -> None:
        # The space closes (its last batch is written), then its rows go with its
        # catalog entry in one transaction, without a change of the space each.
        space = hosted.space
        assert space is not None
        assert self._catalog is not None
        space.close()
        self._retired[name] = self._retired.get(name, 0) + 1
        self._catalog.drop(name, self._storage.pop(name), self._retired[name])

    def close(self) -> None:
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock on the directory
            self._lock_fd = None


SCHEME = Scheme(connect, connect_async, SqliteHost)
