"""A node's spaces kept in a store (``Node(store="sqlite:PATH")``): its spaces,
tuples and records across a restart, and the references its records hold to other
nodes' records held and counted again (soft state)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import tuplespace as ts
from helpers import PATIENCE, wait_until
from tuplespace.server import Server, create_app

# Short timers: the test waits for what they make happen, never for a time.
TIMERS = {"timeout": PATIENCE, "refresh_period": 0.05, "reference_lifetime": 1.0}


def test_a_node_keeps_its_spaces_records_and_references_across_a_restart(tmp_path: Path) -> None:
    store = f"sqlite:{tmp_path / 'node.db'}"
    with ts.Node("coap://127.0.0.1:0/", **TIMERS) as b:  # type: ignore[arg-type]
        kitchen = b.space("home").create("kitchen", {"temp": 21.5})
        a = ts.Node("coap://127.0.0.1:0/", store=store, **TIMERS)  # type: ignore[arg-type]
        base = a.base_uri
        try:
            house = a.space("house", order="lifo").create("house", {"kitchen": kitchen.address, "rooms": 3})
            a.space("house").create("shed", {"in": house.address})
            a.space("jobs").write(("job", 1))
            assert kitchen.get("$refcount") == 1
        finally:
            a.close()
        wait_until(lambda: kitchen.get("$refcount") == 0, "the stopped node's reference to lapse")
        with ts.Node(base, store=store, **TIMERS) as again:  # type: ignore[arg-type]
            assert set(again.spaces) == {"house", "jobs"}
            assert again.space("house").order == "lifo"
            assert again.space("jobs").take(("job", int), timeout=0) == ("job", 1)
            house = again.space("house").record("house")
            assert house.address == ts.URI(base + "spaces/house/house")
            assert house.get("rooms") == 3
            assert again.space("house").record("shed").get("in") == house.address
            assert again.record(base + "spaces/house/house").get("rooms") == 3  # served over CoAP
            wait_until(lambda: kitchen.get("$refcount") == 1, "the reference to be counted again")
            wait_until(lambda: house.get("$level") == 1, "the held record's level to come back")
            with pytest.raises(ts.RecordInUse):
                kitchen.destroy()
            house.set("kitchen", None)  # held as before: letting it go lets it lapse
            wait_until(lambda: kitchen.get("$refcount") == 0, "the dropped reference to lapse")


def test_a_redirection_to_another_node_survives_a_restart(tmp_path: Path) -> None:
    store = f"sqlite:{tmp_path / 'node.db'}"
    with ts.Node("coap://127.0.0.1:0/", **TIMERS) as b:  # type: ignore[arg-type]
        b.space("house")
        a = ts.Node("coap://127.0.0.1:0/", store=store, **TIMERS)  # type: ignore[arg-type]
        base = a.base_uri
        try:
            home = a.space("home")
            jam = home.create("jam", {"jars": 3})
            shared = jam.capability({"read"})
            home.create("tea", {"bags": 20}).move(b.base_uri + "spaces/house/tea", redirect_lease=0)
            jam.move(b.base_uri + "spaces/house/jam", redirect_lease=None)
        finally:
            a.close()
        with ts.Node(base, store=store, **TIMERS) as again:  # type: ignore[arg-type]
            followed = b.record(base + "spaces/home/jam")
            assert followed.get("jars") == 3
            assert followed.address == ts.URI(b.base_uri + "spaces/house/jam")
            assert b.record(shared.address).get("jars") == 3  # the capability's address too
            with pytest.raises(ts.RecordNotFound):
                b.record(base + "spaces/home/tea").get("bags")  # moved without a redirection
            again.space("home").create("jam", {"jars": 0})  # a record takes the path: it ends
        with ts.Node(base, store=store, **TIMERS) as third:  # type: ignore[arg-type]
            assert third.record(base + "spaces/home/jam").get("jars") == 0


def test_a_handle_on_a_destroyed_record_reaches_no_record_made_after_a_restart(tmp_path: Path) -> None:
    store = f"sqlite:{tmp_path / 'node.db'}"
    a = ts.Node("coap://127.0.0.1:0/", store=store, **TIMERS)  # type: ignore[arg-type]
    base = a.base_uri
    with ts.connect(base + "spaces/home", timeout=PATIENCE) as home:
        try:
            a.space("home")
            old = home.create("r", {"n": 1})
            old.destroy()
        finally:
            a.close()
        with ts.Node(base, store=store, **TIMERS) as again:  # type: ignore[arg-type]
            again.space("home").create("r", {"n": 2})
            with pytest.raises(ts.RecordNotFound):
                old.get("n")  # a handle names one record: not the one made at its path since
            assert home.record("r").get("n") == 2


def test_a_space_made_anew_under_a_deleted_name_is_served_under_that_name(tmp_path: Path) -> None:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as node:
        live = Server(create_app(tmp_path / "data", node=node), port=0)
        thread = live.start_in_thread()
        try:
            with httpx.Client(base_url=live.url, timeout=PATIENCE) as http:
                kitchen = {"path": "kitchen", "fields": {"temp": 20}}
                assert http.post("/spaces/home/records/create", json=kitchen).status_code == 201
                assert http.delete("/spaces/home").status_code == 204
                made = http.post("/spaces/home/records/create", json=kitchen)  # stored apart: it starts empty
                assert made.status_code == 201, made.text
                address = made.json()["record"]["address"]["$uri"]
            assert address == node.base_uri + "spaces/home/kitchen"
            assert node.record(address).get("temp") == 20
        finally:
            live.stop()
            thread.join(PATIENCE)


def test_a_nodes_store_is_checked(tmp_path: Path) -> None:
    for store, says in [
        ("nowhere", "a node's store is memory: or sqlite:PATH"),
        ("memory:?order=lifo", "takes no options"),
    ]:
        with pytest.raises(ts.InvalidValue, match=says):
            ts.Node("coap://127.0.0.1:0/", store=store)
    with ts.Node("coap://127.0.0.1:0/", store=f"sqlite:{tmp_path / 'n.db'}") as node:
        with pytest.raises(ts.InvalidValue, match="takes only the options order, capacity"):
            node.space("jobs", seed=3)
        assert node.spaces == {}
        with pytest.raises(ts.InvalidValue, match=r"make it with base_uri=node\.base_uri"):
            node.add_space("jobs", ts.Space(name="jobs"))
        served = ts.Space(name="jobs", base_uri=node.base_uri)
        node.add_space("jobs", served)
        with pytest.raises(ts.InvalidValue, match="has a space 'jobs' already"):
            node.add_space("jobs", served)
        node.remove_space("jobs")
        assert node.spaces == {}
        served.close()
