"""Records on the durable store (docs/storage.md, docs/records.md): records, credit
accounts, capabilities and redirections survive a restart, credit keeps draining by
the clock while the store is closed, and older files are migrated."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import tuplespace as ts
from tuplespace import _sqlite

APPLICATION_ID = 0x54535043


def url(path: Path, space: str = "s") -> str:
    return f"sqlite://{path}?space={space}"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "spaces.db"


def rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(path)
    try:
        return con.execute(f"SELECT * FROM {table}").fetchall()
    finally:
        con.close()


def test_records_survive_a_restart(db: Path) -> None:
    space = ts.connect(url(db))
    sensor = space.create("sensors/kitchen", {"temp": 21.5, "unit": "C"})
    sensor.set("temp", 22.0)
    room = space.create("rooms/kitchen", {"sensor": sensor.address, "name": "kitchen"})
    ro = sensor.read_only()
    cap = sensor.capability({"read", "set"}, lease=3600)
    sensor.move("sensors/k1", redirect_lease=None)
    space.grant_credit("alice", "12.5")
    address, snapshot = sensor.address, sensor.snapshot()
    last_event = space.statistics()["last_event"]
    space.close()

    space = ts.connect(url(db))
    try:
        assert space.statistics()["last_event"] == last_event
        again = space.record("sensors/k1")
        assert again.snapshot() == snapshot
        assert again.get("$version") == 3
        assert space.record("sensors/kitchen") == again  # the redirection
        assert (again.get("$refcount"), space.record("rooms/kitchen").get("$level")) == (1, 1)
        assert space.record(room.address).get("sensor") == address
        assert space.record(ro.address).get("temp") == 22.0
        opened = space.record(cap.address)
        assert opened.operations == frozenset({"read", "set"})
        assert opened.expires_at == cap.expires_at
        opened.set("temp", 23.0)
        with pytest.raises(ts.NotAllowed):
            space.record(ro.address).set("temp", 0.0)
        assert again.read_only().address == ro.address  # the same $RO handle
        assert space.account("alice") == ts.Credit("12.5")
        assert space.find({"unit": "C"}) == [again]
        assert space.find({"name": "kitchen"}, under="rooms") == [space.record("rooms/kitchen")]
        new = space.create("later", {"n": 1})
        assert new.get("$version") == 1
        assert new != again
    finally:
        space.close()


def test_destroyed_and_revoked_things_leave_the_file(db: Path) -> None:
    space = ts.connect(url(db))
    a = space.create("a", {"n": 1})
    b = space.create("b", {"a": a.address})
    cap = a.capability({"read"})
    a.read_only()
    cap.revoke()
    a.move("a2")
    a.destroy(force=True)
    b.destroy()
    space.close()
    for table in ("records", "capabilities", "redirections"):
        assert rows(db, table) == [], table


def test_credit_keeps_draining_while_the_store_is_closed(db: Path) -> None:
    clock = ts.SimulatedClock()
    options = {"clock": clock, "charge_rate": "1024", "creation_charge": "1"}
    space = ts.connect(url(db), **options)
    space.grant_credit("alice", 100_000)
    short = space.create("short", {"n": 1}, credit=15, principal="alice")  # "short"+"n"+"1": 7 bytes
    space.create("long", {"n": 1}, credit=70, principal="alice")  # 6 bytes: 6 credit/s
    space.create("holder", {"s": short.address}, lease=100, principal="alice")
    short.capability({"read"})
    balance = space.account("alice")
    space.close()

    clock.advance(5)
    space = ts.connect(url(db), clock=clock)  # the charging options are the stored ones
    try:
        assert space.charge_rate == ts.Credit(1024)
        with pytest.raises(ts.RecordNotFound):
            space.record("short")
        assert space.record("long").get("$credit") == ts.Credit(40)
        assert space.record("long").get("$lifetime") == pytest.approx(40 / 6)
        assert space.record("holder").get("s") is None  # what it held expired
        assert space.account("alice") == balance
        assert space.statistics()["capabilities"] == 0
        clock.advance(40 / 6)
        with pytest.raises(ts.RecordNotFound):
            space.record("long")
    finally:
        space.close()
    assert [r[1] for r in rows(db, "records")] == [3]  # only the holder is left


def test_the_charging_options_are_stored_with_the_space(db: Path) -> None:
    ts.connect(url(db), charge_rate="2", creation_charge="0.5").close()
    with pytest.raises(ValueError, match="charge_rate"):
        ts.connect(url(db), charge_rate="3")
    space = ts.connect(url(db), charge_rate=2, creation_charge="0.50")
    assert (space.charge_rate, space.creation_charge) == (ts.Credit(2), ts.Credit("0.5"))
    space.close()


def test_a_record_expiring_while_open_leaves_the_file(db: Path) -> None:
    clock = ts.SimulatedClock()
    space = ts.connect(url(db), clock=clock)
    space.create("r", {"n": 1}, lease=5)
    clock.advance(5)
    assert space.statistics()["records"] == 0
    space.close()
    assert rows(db, "records") == []


def make_version_1(path: Path) -> None:
    """A store as the first release wrote it: schema version 1, one space, one tuple."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        _sqlite._create_v1(con)
        con.execute("INSERT INTO spaces VALUES ('s', 1, 1, ?)", ('{"order":"fifo","capacity":null}',))
        con.execute("INSERT INTO tuples VALUES ('s', 1, ?, NULL)", (ts.encode(("kept", 1)),))
        con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        con.execute("PRAGMA user_version = 1")
    finally:
        con.close()


def test_a_version_1_store_is_migrated(db: Path) -> None:
    make_version_1(db)
    space = ts.connect(url(db))
    try:
        assert space.read_all((str, int)) == [("kept", 1)]
        assert space.charge_rate == 0
        space.create("r", {"n": 1})
    finally:
        space.close()
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA user_version").fetchone() == (_sqlite.SCHEMA_VERSION,)
    finally:
        con.close()
    space = ts.connect(url(db))
    assert space.record("r").get("n") == 1
    space.close()


def test_a_version_7_store_keeps_the_options_changed_on_its_spaces(db: Path) -> None:
    con = sqlite3.connect(db, isolation_level=None)
    try:
        for v in range(7):
            _sqlite.MIGRATIONS[v](con)
        made = {"order": "fifo", "capacity": None, "firing_charge": "0.5", "max_firings": 3}
        for name in ("s", "t"):
            con.execute("INSERT INTO spaces VALUES (?, 0, 0, ?)", (name, json.dumps(made)))
        changed = [("firing_charge", '"0.25"'), ("max_firings", "9")]
        con.executemany("INSERT INTO changed_options VALUES ('s', ?, ?)", changed)
        con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        con.execute("PRAGMA user_version = 7")
    finally:
        con.close()
    space, other = ts.connect(url(db)), ts.connect(url(db).replace("space=s", "space=t"))
    try:
        assert (space.rules.firing_charge, space.rules.limits.max_firings) == (ts.Credit("0.25"), 9)
        assert (other.rules.firing_charge, other.rules.limits.max_firings) == (ts.Credit("0.5"), 3)
        space.rules.step_charge = "0.125"
    finally:
        space.close()
        other.close()
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA user_version").fetchone() == (_sqlite.SCHEMA_VERSION,)
        tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "changed_options" not in tables
    finally:
        con.close()
    space = ts.connect(url(db), firing_charge="0.25")
    try:
        assert (space.rules.step_charge, space.rules.limits.max_firings) == (ts.Credit("0.125"), 9)
    finally:
        space.close()


def test_a_damaged_record_is_a_store_error(db: Path) -> None:
    ts.connect(url(db)).create("r", {"n": 1}).snapshot()
    _sqlite._FILES[str(db.resolve())].spaces["s"][0].close()
    con = sqlite3.connect(db, isolation_level=None)
    try:
        con.execute("UPDATE records SET fields = ?", (b"[1,",))
    finally:
        con.close()
    with pytest.raises(ts.StoreError, match="damaged"):
        ts.connect(url(db))
