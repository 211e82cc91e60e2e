"""An independent CoAP client, libcoap's ``coap-client-notls`` (Debian: libcoap3-bin),
against a node: GET and PUT of a field in CBOR and JSON, Observe of a field, of a
space's events and of a record's changes, block-wise transfer both ways, and the errors it is answered."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

import tuplespace as ts
from helpers import PATIENCE, missing, wait_until


@pytest.fixture(scope="module")
def client() -> str:
    binary = shutil.which("coap-client-notls")
    if binary is None:
        missing("coap-client-notls is needed for interoperability (Debian: apt-get install libcoap3-bin)")
    return binary


@pytest.fixture
def node() -> Iterator[ts.Node]:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, max_request_bytes=6000) as n:
        yield n


@pytest.fixture
def kitchen(node: ts.Node) -> ts.Record:
    return node.space("home").create("kitchen", {"temp": 21.5})


def coap(client: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([client, *args], capture_output=True, timeout=PATIENCE, check=True)


def test_get_a_field_in_cbor_and_json(client: str, kitchen: ts.Record) -> None:
    uri = str(kitchen.address)
    # coap-client ends what it prints with a newline.
    assert coap(client, "-m", "get", uri + "/temp").stdout == ts.encode_cbor(21.5) + b"\n"
    assert coap(client, "-m", "get", "-A", "50", uri + "/temp").stdout == b'{"$float":"21.5"}\n'
    assert coap(client, "-m", "get", "-A", "60", uri).stdout == ts.encode_cbor({"temp": 21.5}) + b"\n"


def test_put_a_field(client: str, kitchen: ts.Record, tmp_path: Path) -> None:
    uri = str(kitchen.address)
    answer = coap(client, "-m", "put", "-t", "50", "-e", '{"$float":"22.5"}', uri + "/temp")
    assert answer.stdout == ts.encode_cbor(2) + b"\n"  # the new $version
    assert kitchen.get("temp") == 22.5
    value = tmp_path / "value.cbor"
    value.write_bytes(ts.encode_cbor(("C", 1, 1.0, True)))
    coap(client, "-m", "put", "-t", "60", "-f", str(value), uri + "/unit")
    assert kitchen.get("unit") == ("C", 1, 1.0, True)


def test_errors_are_answered_with_a_diagnostic(client: str, kitchen: ts.Record) -> None:
    uri = str(kitchen.address)
    answer = coap(client, "-m", "get", uri + "/humidity")
    assert answer.stderr.startswith(b'4.04 {"error":{"code":"field_not_found"')
    answer = coap(client, "-m", "put", "-t", "50", "-e", "[1", uri + "/temp")
    assert answer.stderr.startswith(b'4.00 {"error":{"code":"wire_error"')
    assert kitchen.get("temp") == 21.5


def test_options_a_node_cannot_take_are_answered_with_a_diagnostic(client: str, kitchen: ts.Record) -> None:
    uri = str(kitchen.address) + "/temp"
    answer = coap(client, "-m", "get", "-O", "23,0x07", uri)  # Block2 of size exponent 7 (reserved)
    assert answer.stderr == b"4.00 block size exponent 7 is reserved (BERT)\n"
    answer = coap(client, "-m", "put", "-t", "50", "-e", '{"$float":"3"}', "-O", "17,0x000032", uri)
    assert answer.stderr == b"4.02 option 17 is 3 bytes long, at most 2\n"
    answer = coap(client, "-m", "get", "-O", "2049,x", uri)
    assert answer.stderr == b"4.02 option 2049 is not understood\n"
    assert kitchen.get("temp") == 21.5


def test_observe_a_field(client: str, node: ts.Node, kitchen: ts.Record) -> None:
    # stdbuf makes coap-client hand over each notification as it arrives (-w: one a line).
    command = ["stdbuf", "-oL", client, "-w", "-m", "get", "-s", str(int(PATIENCE)), "-A", "50"]
    lines: list[bytes] = []
    with subprocess.Popen([*command, f"{kitchen.address}/temp"], stdout=subprocess.PIPE) as process:
        reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()))
        reader.start()
        try:
            wait_until(lambda: lines == [b'{"$float":"21.5"}\n'], "the first answer")
            assert node.statistics()["observations"] == 1
            kitchen.set("temp", 1.0)
            wait_until(lambda: len(lines) == 2, "a notification")
            kitchen.set("unit", "C")  # another field: no notification
            kitchen.set("temp", 2.0)
            wait_until(lambda: len(lines) == 3, "a second notification")
            assert lines == [b'{"$float":"21.5"}\n', b'{"$float":"1"}\n', b'{"$float":"2"}\n']
        finally:
            process.terminate()
            reader.join()


def test_observe_a_spaces_events(client: str, node: ts.Node) -> None:
    jobs = node.space("jobs")
    # A FETCH with Observe (-s) and the template in the JSON wire format; JSON answers (-A 50).
    command = ["stdbuf", "-oL", client, "-w", "-m", "fetch", "-s", str(int(PATIENCE)), "-A", "50"]
    template = ["-t", "50", "-e", '["job",{"$formal":"int"}]']
    uri = f"{node.base_uri}spaces/jobs?op=subscribe&events=write,take"
    lines: list[bytes] = []
    with subprocess.Popen([*command, *template, uri], stdout=subprocess.PIPE) as process:
        reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()))
        reader.start()
        try:
            wait_until(lambda: len(lines) == 1, "the first answer")
            assert node.statistics()["subscriptions"] == 1
            assert ts.decode(lines[0]) == {"after": 0, "events": (), "new": True}
            jobs.write(("job", 1))
            wait_until(lambda: len(lines) == 2, "a notification")
            jobs.write(("other", 1))  # not a job: no notification
            jobs.take(("job", 1))
            wait_until(lambda: len(lines) == 3, "a second notification")
        finally:
            process.terminate()
            reader.join()
    notes = [ts.decode(line) for line in lines[1:3]]
    assert [note["after"] for note in notes] == [0, 1]
    assert [(e["seq"], e["kind"], e["tuple"]) for n in notes for e in n["events"]] == [
        (1, "write", ("job", 1)),
        (3, "take", ("job", 1)),
    ]
    # Without Observe a subscription is refused: its events come in notifications.
    answer = coap(client, "-m", "fetch", *template, f"{node.base_uri}spaces/jobs?op=subscribe")
    assert answer.stderr.startswith(b'4.00 {"error":{"code":"bad_request"')


def test_watch_a_records_changes(client: str, node: ts.Node, kitchen: ts.Record) -> None:
    # A FETCH with Observe (-s) and no payload on the record, ?op=watch; JSON answers (-A 50).
    command = ["stdbuf", "-oL", client, "-w", "-m", "fetch", "-s", str(int(PATIENCE)), "-A", "50"]
    lines: list[bytes] = []
    begun = kitchen.get("$version")
    with subprocess.Popen([*command, f"{kitchen.address}?op=watch"], stdout=subprocess.PIPE) as process:
        reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()))
        reader.start()
        try:
            wait_until(lambda: len(lines) == 1, "the first answer")
            assert node.statistics()["subscriptions"] == 1
            first = ts.decode(lines[0])
            assert (first["events"], first["new"]) == ((), True)
            kitchen.set("temp", 22.0)
            wait_until(lambda: len(lines) == 2, "a notification")
            kitchen.set("unit", "C")
            wait_until(lambda: len(lines) == 3, "a second notification")
            kitchen.destroy()
            wait_until(lambda: len(lines) == 4, "the notification of its destruction")
            # Then the watch ends (a 4.04 watch_ended, on stderr): the node holds it no more.
            wait_until(lambda: node.statistics()["subscriptions"] == 0, "the watch to end")
        finally:
            process.terminate()
            reader.join()
    notes = [ts.decode(line) for line in lines[1:4]]
    changes = [change for note in notes for change in note["events"]]
    assert [(c["kind"], c["path"], c["tag"], c["value"], c["version"]) for c in changes] == [
        ("update", "kitchen", "temp", 22.0, begun + 1),
        ("update", "kitchen", "unit", "C", begun + 2),
        ("destroy", "kitchen", None, None, begun + 2),
    ]
    assert [note["after"] for note in notes] == [c["seq"] - 1 for c in changes]


def test_blockwise_both_ways(client: str, kitchen: ts.Record, tmp_path: Path) -> None:
    uri = str(kitchen.address)
    note = "x" * 3000
    value = tmp_path / "note.json"
    value.write_text(ts.encode(note).decode())
    coap(client, "-m", "put", "-b", "64", "-t", "50", "-f", str(value), uri + "/note")
    assert kitchen.get("note") == note
    answer = coap(client, "-m", "get", "-b", "64", uri + "/note")
    assert answer.stdout == ts.encode_cbor(note) + b"\n"


def test_a_request_past_the_bound_is_refused(client: str, kitchen: ts.Record, tmp_path: Path) -> None:
    value = tmp_path / "note.json"
    value.write_text(ts.encode("y" * 7000).decode())
    answer = coap(client, "-m", "put", "-b", "64", "-t", "50", "-f", str(value), f"{kitchen.address}/note")
    assert answer.stderr.startswith(b"4.13 ")
    assert b'"limit":"max_request_bytes"' in answer.stderr
    assert kitchen.get("note") is None


def test_the_sys_records(client: str, node: ts.Node) -> None:
    base = node.base_uri
    answer = coap(client, "-m", "get", "-A", "50", base + "$sys/node/base_uri")
    assert answer.stdout == ts.encode(ts.URI(base)) + b"\n"
    clock = ts.decode_cbor(coap(client, "-m", "get", base + "$sys/clock").stdout[:-1])
    assert isinstance(clock, ts.Map)
    assert set(clock) == {"now", "monotonic"}
    assert coap(client, "-m", "get", base + "$sys/peers").stdout == ts.encode_cbor({}) + b"\n"
    answer = coap(client, "-m", "put", "-e", "1", base + "$sys/node/id")
    assert answer.stderr.startswith(b'4.05 {"error":{"code":"method_not_allowed"')


def test_observe_the_sys_peers(client: str) -> None:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as peer:
        peer_base = peer.base_uri
        with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, refresh_period=0.05, peers=[peer_base]) as node:
            uri = node.base_uri + "$sys/peers"
            wait_until(lambda: node.record(uri).all()[peer_base]["alive"] is True, "the peer to answer")
            command = ["stdbuf", "-oL", client, "-w", "-m", "get", "-s", str(int(PATIENCE)), "-A", "50"]
            lines: list[bytes] = []
            with subprocess.Popen([*command, uri], stdout=subprocess.PIPE) as process:
                reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()))
                reader.start()
                try:
                    wait_until(lambda: len(lines) == 1, "the first answer")
                    assert node.statistics()["observations"] == 1
                    peer.close()
                    wait_until(lambda: len(lines) == 2, "a notification")
                finally:
                    process.terminate()
                    reader.join()
    states = [ts.decode(line)[peer_base] for line in lines[:2]]  # then the newline it ends with
    assert [(state["alive"], state["configured"]) for state in states] == [(True, True), (False, True)]


def test_find_take_and_refresh_records(client: str, node: ts.Node, kitchen: ts.Record) -> None:
    home = node.space("home")
    home.create("jobs/1", {"kind": "job", "n": 1})
    home.create("jobs/2", {"kind": "job", "n": 2})
    space = node.base_uri + "spaces/home"
    template = '{"kind":"job"}'
    found = coap(client, "-m", "fetch", "-t", "50", "-e", template, space + "?op=find&under=jobs").stdout
    addresses = (ts.URI(space + "/jobs/1"), ts.URI(space + "/jobs/2"))
    assert ts.decode_cbor(found[:-1]) == {"records": addresses, "ids": (2, 3), "more": False}
    taken = coap(
        client, "-m", "fetch", "-t", "50", "-e", template, space + "?op=take_record&timeout=0"
    ).stdout
    assert ts.decode_cbor(taken[:-1]) == {
        "address": addresses[0],
        "tags": ("kind", "n"),
        "fields": {"kind": "job", "n": 1},
        "version": 1,
    }
    with pytest.raises(ts.RecordNotFound):
        home.record("jobs/1")
    answer = coap(client, "-m", "fetch", "-t", "50", "-e", "[1]", space + "?op=find")
    assert answer.stderr.startswith(b'4.00 {"error":{"code":"invalid_template"')
    expires = ts.decode_cbor(
        coap(client, "-m", "post", f"{kitchen.address}?op=refresh&lease=3600").stdout[:-1]
    )
    assert isinstance(expires, float)
    lifetime = kitchen.get("$lifetime")
    assert isinstance(lifetime, float)
    assert 3000 < lifetime <= 3600
    coap(client, "-m", "post", "-t", "50", "-e", '{"n":1}', space + "/pantry?credit=2.5")
    assert home.record("pantry").get("$credit") == ts.Credit("2.5")


def test_a_snapshot_keeps_the_order_of_the_tags(client: str, kitchen: ts.Record) -> None:
    kitchen.set("alpha", 1)  # after temp: a CBOR map would put it first
    answer = coap(client, "-m", "get", f"{kitchen.address}?snapshot").stdout
    assert ts.decode_cbor(answer[:-1]) == {
        "address": kitchen.address,
        "tags": ("temp", "alpha"),
        "fields": {"temp": 21.5, "alpha": 1},
        "version": 2,
    }
    answer = coap(client, "-m", "get", f"{kitchen.address}?order")
    assert answer.stderr.startswith(b'4.00 {"error":{"code":"bad_request"')


def test_clone_and_move_a_record(client: str, node: ts.Node, kitchen: ts.Record) -> None:
    home = node.space("home")
    space = node.base_uri + "spaces/home"
    answer = coap(client, "-m", "post", f"{kitchen.address}?op=clone&to=copy").stdout
    assert ts.decode_cbor(answer[:-1]) == ts.URI(space + "/copy")
    assert home.record("copy").all() == {"temp": 21.5}
    answer = coap(client, "-m", "post", f"{kitchen.address}?op=move&to=rooms/kitchen&redirect_lease=0").stdout
    assert ts.decode_cbor(answer[:-1]) == ts.URI(space + "/rooms/kitchen")
    assert kitchen.address == ts.URI(space + "/rooms/kitchen")
    with pytest.raises(ts.RecordNotFound):
        home.record("kitchen")
    answer = coap(client, "-m", "post", f"{kitchen.address}?op=move")
    assert answer.stderr.startswith(b'4.00 {"error":{"code":"bad_request"')


def test_add_list_and_remove_a_rule_and_call_a_method(client: str, node: ts.Node) -> None:
    home = node.space("home")
    rules = node.base_uri + "spaces/home/$rules"
    rule = '{"name":"hot","template":["reading",{"$formal":"str"},{"$formal":"float"}],'
    rule += '"when":"t[2] > 30.0","write":[["alarm","t[1]"]]}'
    added = orjson.loads(coap(client, "-m", "post", "-t", "50", "-e", rule, rules).stdout)["rule"]
    assert (added["name"], added["kind"], added["level"], added["fired"]) == ("hot", "reaction", 1, 0)
    home.write(("reading", "kitchen", 31.0))
    assert home.read_all(("alarm", str)) == [("alarm", "kitchen")]
    listed = orjson.loads(coap(client, "-m", "get", rules).stdout)["rules"]
    assert [(r["name"], r["when"], r["fired"], r["last_error"]) for r in listed] == [
        ("hot", "t[2] > 30.0", 1, None)
    ]
    answer = coap(client, "-m", "post", "-t", "50", "-e", rule, rules)
    assert answer.stderr.startswith(b'4.09 {"error":{"code":"rule_exists"')
    coap(client, "-m", "delete", rules + "/hot")
    assert home.rules.list() == []
    answer = coap(client, "-m", "get", rules + "/hot")
    assert answer.stderr.startswith(b'4.04 {"error":{"code":"rule_not_found"')
    bump = "function(self, d) self.target = self.target + d return self.target end"
    thermo = home.create("thermostat", {"target": 21.0, "bump": ts.Method(bump)})
    called = coap(
        client, "-m", "post", "-t", "50", "-e", '[{"$float":"0.5"}]', f"{thermo.address}/bump?op=call"
    )
    assert called.stdout == ts.encode_cbor(21.5) + b"\n"
    assert thermo.get("target") == 21.5


def test_a_rule_posted_in_blocks_is_answered_in_blocks(client: str, node: ts.Node, tmp_path: Path) -> None:
    # coap-client asks each block under a token of its own; the answer's blocks come from
    # the answer the node kept, and the rule is added once.
    home = node.space("home")
    rule = {
        "name": "big",
        "template": ["reading", {"$formal": "str"}, {"$formal": "float"}],
        "write": [["alarm", "x" * 40, i] for i in range(60)],
    }
    definition = tmp_path / "rule.json"
    definition.write_bytes(orjson.dumps(rule))
    rules = node.base_uri + "spaces/home/$rules"
    answer = coap(client, "-m", "post", "-b", "64", "-t", "50", "-f", str(definition), rules)
    assert answer.stderr == b""
    added = orjson.loads(answer.stdout)["rule"]
    assert len(answer.stdout) > 1024  # more than one block of the node's
    assert (added["name"], added["write"]) == ("big", rule["write"])
    assert [r.name for r in home.rules.list()] == ["big"]
    assert node.endpoint.statistics()["bodies"] == 0


def test_mint_and_transfer_credit(client: str, node: ts.Node) -> None:
    bank = node.space("bank", mint_amount="0.5", mint_bits=4)
    credit = node.base_uri + "spaces/bank/$credit"
    c = orjson.loads(coap(client, "-m", "get", credit + "/challenge").stdout)
    assert (c["bits"], c["amount"]) == (4, {"$credit": "0.5"})
    stamp = orjson.dumps({"challenge": c["challenge"], "nonce": ts.make_stamp(c["challenge"], c["bits"])})
    minted = coap(client, "-m", "post", "-t", "50", "-e", stamp.decode(), credit + "/mint")
    assert orjson.loads(minted.stdout) == {"principal": "default", "balance": {"$credit": "0.5"}}
    moved = coap(client, "-m", "post", "-t", "50", "-e", '{"to":"ops","amount":"0.2"}', credit + "/transfer")
    assert orjson.loads(moved.stdout)["balance"] == {"$credit": "0.3"}
    answer = coap(client, "-m", "get", credit + "?principal=ops")
    assert orjson.loads(answer.stdout) == {"principal": "ops", "balance": {"$credit": "0.2"}}
    answer = coap(client, "-m", "post", "-t", "50", "-e", '{"to":"ops","amount":"9"}', credit + "/transfer")
    assert answer.stderr.startswith(b'4.03 {"error":{"code":"insufficient_credit"')
    assert (bank.account("default"), bank.account("ops")) == (ts.Credit("0.3"), ts.Credit("0.2"))


def test_get_the_options_of_a_space(client: str, node: ts.Node) -> None:
    node.space("jobs", capacity=3, firing_charge="0.5")
    answer = coap(client, "-m", "get", "-A", "50", node.base_uri + "spaces/jobs?options").stdout
    options = ts.decode(answer[:-1])
    assert (options["capacity"], options["firing_charge"], options["clock"]) == (
        3,
        ts.Credit("0.5"),
        "system",
    )
    assert options["active_limits"]["max_firings"] == options["max_firings"]


def test_put_the_options_of_a_space(client: str, node: ts.Node) -> None:
    jobs = node.space("jobs")
    uri = node.base_uri + "spaces/jobs?options"
    body = '{"step_charge":"0.001","max_firings":12}'
    answer = coap(client, "-m", "put", "-t", "50", "-A", "50", "-e", body, uri).stdout
    assert ts.decode(answer[:-1])["active_limits"]["max_firings"] == jobs.max_firings == 12
    assert jobs.step_charge == ts.Credit("0.001")
    refused = coap(client, "-m", "put", "-t", "50", "-e", '{"max_firings":0}', uri)
    assert refused.stderr.startswith(b'4.00 {"error":{"code":"bad_request"')
    assert jobs.max_firings == 12


def test_fetch_with_a_template_in_cbor(client: str, node: ts.Node, tmp_path: Path) -> None:
    jobs = node.space("jobs")
    jobs.write_many([("job", 1), ("job", 2.5)])
    space = node.base_uri + "spaces/jobs"
    vectors = json.loads((Path(__file__).parent.parent / "docs" / "cbor-vectors.json").read_text())
    template = tmp_path / "template.cbor"
    template.write_bytes(bytes.fromhex(vectors["templates"][0]["cbor"]))  # ["job", {"$formal": "int"}]
    taken = coap(client, "-m", "fetch", "-t", "60", "-f", str(template), space + "?op=take&timeout=0").stdout
    assert ts.decode_cbor(taken[:-1]) == ("job", 1)
    assert jobs.read_all(("job", ts.ANY)) == [("job", 2.5)]


def test_read_and_move_a_simulated_clock(client: str, node: ts.Node) -> None:
    clock = ts.SimulatedClock()
    node.space("sim", clock=clock)
    start = clock.now()
    space = node.base_uri + "spaces/sim"
    assert ts.decode(coap(client, "-m", "get", "-A", "50", space + "?clock").stdout[:-1]) == {
        "now": start,
        "simulated": True,
    }
    moved = coap(client, "-m", "post", "-t", "50", "-e", '{"advance": 2.5}', space + "?op=advance").stdout
    assert ts.decode_cbor(moved[:-1]) == {"now": start + 2.5} == {"now": clock.now()}
    refused = coap(client, "-m", "post", "-t", "50", "-e", '{"advance": 0}', space + "?op=advance")
    assert refused.stderr.startswith(b'4.00 {"error":{"code":"bad_request"')
    assert clock.now() == start + 2.5
