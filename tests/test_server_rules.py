"""The rule routes of the HTTP API (docs/http-api.md, "Rules"): permissions, the
errors of bad rules and cycles, the server's bounds, principals, failures shown as
error bodies, and rules kept by a durable server across a restart; and a space's
simulated clock, moved by an admin (docs/http-api.md, "Simulated time").  What rules mean
is tested over every way of running a space, the server's included, in test_active.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import tuplespace as ts
from test_server import all_tuples, client, error, running
from tuplespace.client._common import error_code
from tuplespace.server import Server, ServerLimits

ADMIN = "admin-token-0123456789"
WRITER = "writer-token-0123456789"
READER = "reader-token-0123456789"
TOKENS = {
    "tokens": [
        {"name": "ops", "token": ADMIN, "admin": True},
        {"name": "acme", "token": WRITER, "spaces": {"plant": ["read", "write"]}},
        {"name": "peek", "token": READER, "spaces": {"plant": ["read"]}},
    ]
}
RULES = "/spaces/plant/rules"
HOT = {
    "name": "hot",
    "template": ["reading", {"$formal": "str"}, {"$formal": "float"}],
    "when": "t[2] > 30.0",
    "write": [["alarm", "t[1]", "t[2] - 30.0"]],
}


@pytest.fixture
def server() -> Iterator[Server]:
    with running(tokens=TOKENS, limits=ServerLimits(max_rules=3, max_rule_bytes=1000)) as s:
        with client(s, ADMIN) as admin:
            assert admin.put("/spaces/plant").status_code == 201
        yield s


@pytest.fixture
def acme(server: Server) -> Iterator[httpx.Client]:
    with client(server, WRITER) as c:
        yield c


def test_a_rule_added_is_listed_fires_and_is_removed(acme: httpx.Client) -> None:
    added = acme.post(RULES, json=HOT)
    assert added.status_code == 201, added.text
    rule = added.json()["rule"]
    assert {k: rule[k] for k in ("name", "kind", "on", "when", "write", "principal", "level", "fired")} == {
        "name": "hot",
        "kind": "reaction",
        "on": ["write"],
        "when": "t[2] > 30.0",
        "write": [["alarm", "t[1]", "t[2] - 30.0"]],
        "principal": "acme",  # the caller's own account pays
        "level": 1,
        "fired": 0,
    }
    assert rule["template"] == HOT["template"]
    acme.post("/spaces/plant/write", json={"tuple": ["reading", "kitchen", {"$float": "31.5"}]})
    found = acme.post("/spaces/plant/read", json={"template": ["alarm", {"$any": True}, {"$any": True}]})
    assert found.json()["tuple"] == ["alarm", "kitchen", {"$float": "1.5"}]
    assert acme.get(RULES + "/hot").json()["rule"]["fired"] == 1
    assert [r["name"] for r in acme.get(RULES).json()["rules"]] == ["hot"]
    assert acme.delete(RULES + "/hot").status_code == 204
    assert acme.get(RULES).json() == {"rules": []}
    error(acme.get(RULES + "/hot"), 404, "rule_not_found")
    error(acme.delete(RULES + "/hot"), 404, "rule_not_found")


def test_reading_rules_needs_read_and_changing_them_write(server: Server, acme: httpx.Client) -> None:
    acme.post(RULES, json=HOT)
    with client(server, READER) as peek:
        assert [r["name"] for r in peek.get(RULES).json()["rules"]] == ["hot"]
        assert peek.get(RULES + "/hot").status_code == 200
        error(peek.post(RULES, json={**HOT, "name": "other"}), 403, "forbidden")
        error(peek.delete(RULES + "/hot"), 403, "forbidden")
    with client(server) as nobody:
        error(nobody.get(RULES), 401, "unauthorized")
        error(nobody.post(RULES, json={**HOT, "name": "other"}), 401, "unauthorized")
    assert [r["name"] for r in acme.get(RULES).json()["rules"]] == ["hot"]


def test_a_rule_that_could_trigger_itself_is_refused_with_its_cycle(acme: httpx.Client) -> None:
    assert acme.post(RULES, json=HOT).status_code == 201
    echo = {
        "name": "echo",
        "template": ["alarm", {"$formal": "str"}, {"$any": True}],
        "write": [["reading", "t[1]", {"$float": "31.0"}]],
    }
    body = error(acme.post(RULES, json=echo), 409, "rule_cycle")
    assert body["cycle"] == ["echo", "hot", "echo"]
    assert "echo -> hot -> echo" in body["message"]
    error(acme.post(RULES, json=HOT), 409, "rule_exists")
    assert [r["name"] for r in acme.get(RULES).json()["rules"]] == ["hot"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"when": "t[2] >"}, "when"),
        ({"write": [["alarm", "tt[1]"]]}, "write[0][1]"),
        ({"write": [["alarm", {"$float": "x"}]]}, "write[0][1]"),
        ({"write": ["alarm"]}, "write[0]"),
        ({"write": "alarm"}, "write"),
        ({"take": [[{"$range": {}}]]}, "take[0][0]"),
        ({"template": [{"$formal": "nothing"}]}, "template[0]"),
        ({"on": "update"}, "on"),
        ({"on": 3}, "on"),
        ({"set": {"house": "1"}}, "set"),
        ({"name": "a b"}, "name"),
        ({"colour": "red"}, "colour"),
        ({"path": "house"}, "template"),
    ],
)
def test_a_bad_rule_is_refused_naming_its_field(
    acme: httpx.Client, change: dict[str, Any], field: str
) -> None:
    response = acme.post(RULES, json={**HOT, **change})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field
    assert acme.get(RULES).json() == {"rules": []}


def test_a_space_holds_at_most_max_rules_of_at_most_max_rule_bytes(acme: httpx.Client) -> None:
    for i in range(3):
        assert acme.post(RULES, json={**HOT, "name": f"hot-{i}"}).status_code == 201
    body = error(acme.post(RULES, json={**HOT, "name": "hot-3"}), 429, "limit_reached")
    assert (body["limit"], body["maximum"]) == ("max_rules", 3)
    acme.delete(RULES + "/hot-0")
    big = {**HOT, "name": "big", "write": [["alarm", "x" * 1000]]}
    body = error(acme.post(RULES, json=big), 413, "value_too_large")
    assert (body["limit"], body["maximum"]) == ("max_rule_bytes", 1000)
    assert [r["name"] for r in acme.get(RULES).json()["rules"]] == ["hot-1", "hot-2"]


def test_a_rule_that_takes_needs_take_as_its_author_would(server: Server, acme: httpx.Client) -> None:
    with client(server, ADMIN) as admin:
        assert admin.post("/spaces/plant/write", json={"tuple": ["secret", "code"]}).status_code == 200
        steal = {"name": "steal", "template": ["go"], "take": [["secret", {"$formal": "str"}]]}
        error(acme.post("/spaces/plant/take", json={"template": ["secret", None]}), 403, "forbidden")
        body = error(acme.post(RULES, json=steal), 403, "forbidden")
        assert "may not take" in body["message"]
        assert acme.post("/spaces/plant/write", json={"tuple": ["go"]}).status_code == 200
        assert acme.get(RULES).json() == {"rules": []}
        assert [t[0] for t in all_tuples(admin, "plant", 2)] == ["secret"]  # nothing taken
        assert admin.post(RULES, json=steal).status_code == 201  # the admin may take


def test_only_an_admin_names_another_principal(server: Server, acme: httpx.Client) -> None:
    error(acme.post(RULES, json={**HOT, "principal": "ops"}), 403, "forbidden")
    with client(server, ADMIN) as admin:
        added = admin.post(RULES, json={**HOT, "principal": "acme"})
        assert added.status_code == 201, added.text
        assert added.json()["rule"]["principal"] == "acme"


def test_the_rules_of_a_revoked_token_are_removed_and_fire_no_more(
    server: Server, acme: httpx.Client
) -> None:
    assert acme.post(RULES, json=HOT).status_code == 201
    seen = {"name": "seen", "template": HOT["template"], "write": [["seen", "t[1]"]]}
    with client(server, ADMIN) as admin:
        assert admin.post(RULES, json=seen).status_code == 201
        assert admin.post(RULES, json={**seen, "name": "paid", "principal": "acme"}).status_code == 201
        assert admin.delete("/tokens/acme").status_code == 204
        assert [(r["name"], r["principal"]) for r in admin.get(RULES).json()["rules"]] == [("seen", "ops")]
        admin.post("/spaces/plant/write", json={"tuple": ["reading", "kitchen", {"$float": "31.5"}]})
        assert all_tuples(admin, "plant", 3) == [["reading", "kitchen", {"$float": "31.5"}]]
        assert all_tuples(admin, "plant", 2) == [["seen", "kitchen"]]
    error(acme.get(RULES), 401, "unauthorized")


def test_a_failure_of_a_rule_is_shown_as_an_error_body(server: Server) -> None:
    with ts.connect(server.url + "/spaces/plant", token=WRITER) as plant:
        plant.rules.add("ratio", template=("pair", int, int), write=[(ts.Lit("ratio"), "t[1] / t[2]")])
        plant.write(("pair", 1, 0))
        info = plant.rules.get("ratio")
        assert (info.fired, info.failed) == (0, 1)
        assert isinstance(info.last_error, ts.EvaluationError)
        assert "division by zero" in str(info.last_error)
        assert info.write == (("'ratio'", "t[1] / t[2]"),)  # a Lit travels as a CEL literal
    with client(server, WRITER) as acme:
        last = acme.get(RULES + "/ratio").json()["rule"]["last_error"]
        assert last["code"] == "evaluation_error"


def test_an_expression_builds_no_value_past_max_built(acme: httpx.Client) -> None:
    # three references to a 400,000-character field would build 1.2 million characters; a few
    # thousand such references would hold the space's lock for minutes and take gigabytes
    grow = {"name": "grow", "template": ["big", {"$formal": "str"}], "when": "size(t[1] + t[1] + t[1]) > 0"}
    assert acme.post(RULES, json={**grow, "write": [["seen"]]}).status_code == 201
    written = acme.post("/spaces/plant/write", json={"tuple": ["big", "a" * 400_000]})
    assert written.status_code == 200, written.text
    rule = acme.get(RULES + "/grow").json()["rule"]
    assert (rule["fired"], rule["failed"]) == (0, 1)
    last = rule["last_error"]
    assert (last["code"], last["limit"], last["maximum"]) == ("value_too_large", "max_built", 1 << 20)
    assert "string + string would build a string of 1200000 characters" in last["message"]
    assert [t[0] for t in all_tuples(acme, "plant", 2)] == ["big"]  # the write happened


def test_the_error_a_rule_keeps_shows_the_values_of_its_event_abbreviated(server: Server) -> None:
    # each rule keeps its last error, and the list of rules answers them all: a message that
    # held the event's value whole would keep a megabyte per rule
    field = {"$formal": "str"}
    with client(server, ADMIN) as admin:
        rules = (
            {"name": "take", "template": ["x", field], "take": [["none", "t[1]"]]},
            {"name": "int", "template": ["x", field], "write": [["y", "int(t[1])"]]},
            {"name": "key", "template": ["x", field], "write": [["y", "{'a': 1}[t[1]]"]]},
        )
        for rule in rules:
            assert admin.post(RULES, json=rule).status_code == 201
        assert admin.post("/spaces/plant/write", json={"tuple": ["x", "z" * 1_000_000]}).status_code == 200
        messages = {r["name"]: r["last_error"]["message"] for r in admin.get(RULES).json()["rules"]}
    assert messages == {
        "take": "take: no tuple matches ('none', 'zzzzzzzzzzzz...zzzzzzzzzzzzz')",
        "int": "int('zzzzzzzzzzzz...zzzzzzzzzzzzz'): not an int",
        "key": "no such key: 'zzzzzzzzzzzz...zzzzzzzzzzzzz'",
    }


def test_a_push_rule_whose_record_is_destroyed_fails_naming_it(server: Server) -> None:
    with ts.connect(server.url + "/spaces/plant", token=ADMIN) as plant:
        kitchen = plant.create("kitchen", {"temp": 20.0})
        house = plant.create("house", {"comfort": None})
        plant.rules.add("comfort", set="house.comfort", to="kitchen.temp > 19.0")
        kitchen.destroy()
        info = plant.rules.get("comfort")
        assert (info.fired, info.failed) == (1, 1)
        assert isinstance(info.last_error, ts.RecordNotFound)
        assert "kitchen" in str(info.last_error)
        assert house.get("comfort") is True  # as the last firing left it
        plant.create("kitchen", {"temp": 10.0})
        assert house.get("comfort") is False
        assert plant.rules.get("comfort").fired == 2
    with client(server, WRITER) as acme:
        assert acme.get(RULES + "/comfort").json()["rule"]["last_error"]["code"] == "record_not_found"


def test_a_durable_server_keeps_its_rules_across_a_restart(tmp_path: Path) -> None:
    for restart in range(2):
        with running(tmp_path / "data") as server, ts.connect(server.url + "/spaces/plant") as plant:
            if not restart:
                plant.rules.add("hot", template=("reading", str, float), write=[("alarm", "t[1]")])
                plant.create("kitchen", {"temp": 21.0})
                plant.create("house", {"warm": None})
                plant.rules.add("warm", set="house.warm", to="k.temp > 20.0", using={"k": "kitchen"})
            plant.write(("reading", "hall", 1.0))
            assert [(r.name, r.kind) for r in plant.rules.list()] == [("hot", "reaction"), ("warm", "push")]
            assert plant.count(("alarm", str)) == restart + 1  # it fired after the restart too
            assert plant.rules.get("warm").using == {"k": "kitchen"}
    with running(tmp_path / "data") as server, ts.connect(server.url + "/spaces/plant") as plant:
        assert plant.count(("alarm", "hall")) == 2
        assert plant.record("house").get("warm") is True


# -- simulated time -------------------------------------------------------------------------------


def test_an_admin_moves_a_simulated_clock_and_leases_and_rules_follow(server: Server) -> None:
    url = server.url + "/spaces/sim"
    with ts.connect(url, token=ADMIN, store="memory", clock="simulated") as sim:
        start = sim.clock.now()
        assert start == ts.SimulatedClock().now()
        sim.rules.add("gone", on="expire", template=("job", int), write=[(ts.Lit("gone"), "t[1]")])
        sim.write(("job", 1), lease=10)
        sim.clock.advance(9)
        assert sim.count(("job", int)) == 1
        sim.clock.advance(2)  # no real time passes: the lease ran out on the space's clock
        assert sim.read_all((str, int)) == [("gone", 1)]
        assert sim.clock.now() == start + 11
    with client(server, ADMIN) as admin:
        assert admin.get("/spaces/sim").json()["options"]["clock"] == "simulated"
        assert admin.get("/spaces/sim/clock").json() == {"now": start + 11, "simulated": True}


def test_only_an_admin_moves_only_a_simulated_clock(server: Server) -> None:
    with client(server, ADMIN) as admin:
        admin.put("/spaces/sim", json={"clock": "simulated"})
        error(admin.post("/spaces/plant/clock", json={"advance": 5}), 409, "real_clock")
        for bad in (0, -1, None, "5", 1e12):
            assert error(admin.post("/spaces/sim/clock", json={"advance": bad}), 400, "bad_request")[
                "field"
            ] == ("advance")
        assert admin.get("/spaces/sim/clock").json()["now"] == ts.SimulatedClock().now()
        assert admin.get("/spaces/plant/clock").json()["simulated"] is False
        error(admin.put("/spaces/odd", json={"clock": "fast"}), 400, "bad_request")
    with ts.connect(server.url + "/spaces/plant", token=WRITER) as plant, pytest.raises(ts.Forbidden):
        plant.clock.advance(5)
    with ts.connect(server.url + "/spaces/plant", token=ADMIN) as plant:
        with pytest.raises(ts.Conflict, match="system clock") as refused:
            plant.clock.advance(5)
        assert error_code(refused.value) == "real_clock"


def test_a_durable_space_keeps_the_system_clock(tmp_path: Path) -> None:
    with running(tmp_path / "data") as server, client(server) as http:
        body = error(http.put("/spaces/sim", json={"clock": "simulated"}), 400, "bad_request")
        assert body["field"] == "clock"
        assert http.put("/spaces/sim", json={"clock": "simulated", "store": "memory"}).status_code == 201


def test_a_rule_that_refreshes_creates_and_calls_travels_as_json(acme: httpx.Client) -> None:
    source = "function(self, n) self.given = self.given + n end"
    made = acme.post(
        "/spaces/plant/records/create",
        json={"path": "farm", "fields": {"given": 0, "give": ts.to_wire(ts.Method(source))}},
    )
    assert made.status_code == 201, made.text
    rule = {
        "name": "intake",
        "template": ["order", {"$formal": "str"}, {"$formal": "int"}],
        "refresh": {"farm": 3600},
        "create": {"'orders/' + t[1]": {"qty": "t[2]", "at": {"$float": 1.5}}},
        "call": [["farm", "give", "t[2]"]],
    }
    added = acme.post(RULES, json=rule)
    assert added.status_code == 201, added.text
    shown = added.json()["rule"]
    assert {k: shown[k] for k in ("refresh", "create", "call")} == {
        "refresh": {"farm": 3600},
        "create": {"'orders/' + t[1]": {"qty": "t[2]", "at": ts.to_wire(1.5)}},
        "call": [["farm", "give", "t[2]"]],
    }
    assert acme.post("/spaces/plant/write", json={"tuple": ["order", "a", 4]}).status_code == 200
    got = acme.post("/spaces/plant/records/get", json={"ref": "orders/a", "tags": ["qty", "at"]})
    assert got.json()["values"] == [4, ts.to_wire(1.5)], got.text
    got = acme.post("/spaces/plant/records/get", json={"ref": "farm", "tags": ["given"]})
    assert got.json()["values"] == [4], got.text
    bad = {**rule, "name": "bad", "call": [["farm"]]}
    assert error(acme.post(RULES, json=bad), 400, "invalid_value")["field"] == "call[0]"
