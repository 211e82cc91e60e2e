"""A node's space over CoAP with the Linda operations: ``ts.connect("coap://…/spaces/jobs")``
against a real node on 127.0.0.1 (the contract tests run over it too: the ``coap`` way)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator

import orjson
import pytest

import tuplespace as ts
from helpers import PATIENCE, spawn, wait_for_waiters, wait_until
from tuplespace._codec import encode_template
from tuplespace._federation._held import ENDED_PER_HOST, Asker, HeldTable, Sessions
from tuplespace._federation._message import (
    CONTENT_FORMAT,
    FETCH,
    GET,
    POST,
    PUT,
    URI_PATH,
    URI_QUERY,
    Message,
)
from tuplespace.client._common import error_code
from tuplespace.server._errors import ApiError
from tuplespace.server._hosting import ENDED_KEPT


@pytest.fixture
def node() -> Iterator[ts.Node]:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as n:
        yield n


def test_write_read_take_over_coap(node: ts.Node) -> None:
    served = node.space("jobs")
    with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE) as jobs:
        assert jobs.name == served.name == "jobs"
        jobs.write(("job", 1, 1.0, True, ts.Credit("2.5")))
        assert served.read(("job", int, float, bool, ts.Credit)) == ("job", 1, 1.0, True, ts.Credit("2.5"))
        assert jobs.count(("job", ts.ANY, ts.ANY, ts.ANY, ts.ANY)) == 1
        assert jobs.read(("job", 1, float, bool, ts.ANY)) == ("job", 1, 1.0, True, ts.Credit("2.5"))
        assert jobs.try_read(("job", 1.0, ts.ANY, ts.ANY, ts.ANY)) is None  # 1.0 is not 1
        assert jobs.take(("job", int, ts.ANY, ts.ANY, ts.ANY), timeout=0) == (
            "job",
            1,
            1.0,
            True,
            ts.Credit("2.5"),
        )
        assert jobs.try_take(("job", ts.ANY, ts.ANY, ts.ANY, ts.ANY)) is None
        assert served.count(("job", ts.ANY, ts.ANY, ts.ANY, ts.ANY)) == 0


def test_a_take_waits_for_a_writer(node: ts.Node) -> None:
    served = node.space("jobs")
    with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE) as jobs:
        taken = spawn(jobs.take, ("job", int))
        wait_for_waiters(served, 1)
        served.write(("job", 7))
        assert taken.result(PATIENCE) == ("job", 7)
        with pytest.raises(ts.Timeout):
            jobs.read(("job", int), timeout=0.1)


def test_a_lease_travels(node: ts.Node) -> None:
    clock = ts.SimulatedClock()
    served = node.space("jobs", clock=clock)
    with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE) as jobs:
        jobs.write(("a",), lease=60.5)
        jobs.write(("b",))
        clock.advance(60)
        assert jobs.count((str,)) == 2
        clock.advance(1)
        assert jobs.count((str,)) == 1
        assert served.read((str,)) == ("b",)


def test_errors_over_coap(node: ts.Node) -> None:
    node.space("jobs", limits=ts.Limits(max_fields=2))
    with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE) as jobs:
        with pytest.raises(ts.ValueTooLarge) as caught:
            jobs.write((1, 2, 3))
        assert caught.value.limit == "max_fields"
        with pytest.raises(ts.InvalidValue):
            jobs.write(("a",), lease=-1)
        with pytest.raises(ts.ValueTooLarge):
            jobs.try_read((ts.ANY, ts.ANY, ts.ANY))
    with (
        ts.connect(node.base_uri + "spaces/nowhere", timeout=PATIENCE) as nowhere,
        pytest.raises(ts.NotFound),
    ):
        nowhere.write(("a",))
    with pytest.raises(ts.InvalidValue):
        ts.connect(node.base_uri + "jobs")
    with pytest.raises(ts.InvalidValue):
        asyncio.run(ts.connect_async(node.base_uri + "jobs"))


def test_write_many_is_all_or_none_and_its_leases_renew_and_cancel(node: ts.Node) -> None:
    clock = ts.SimulatedClock()
    served = node.space("jobs", clock=clock)
    with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE) as jobs:
        with pytest.raises(ts.InvalidValue) as caught:
            jobs.write_many([("job", 1), ("job", float("nan"))])
        assert caught.value.path == "tuples[1][1]"
        assert served.count(("job", ts.ANY)) == 0
        first, second = jobs.write_many([("job", 1), ("job", 2)], lease=10)
        assert first.expires_at == clock.now() + 10
        lease = jobs.write(("job", 3), lease=10)
        first.renew(100)
        assert first.expires_at == clock.now() + 100
        second.cancel()
        clock.advance(50)
        assert jobs.read_all(("job", int)) == [("job", 1)]
        with pytest.raises(ts.UnknownLease):
            lease.renew(10)
        with pytest.raises(ts.UnknownLease):
            second.cancel()
        assert jobs.statistics()["tuples"] == served.statistics()["tuples"] == 1


def test_a_transaction_whose_client_went_away_aborts_at_its_lease_on_the_node(node: ts.Node) -> None:
    clock = ts.SimulatedClock()
    served = node.space("jobs", clock=clock)
    served.write_many([("job", 1), ("job", 2)])
    with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE) as jobs:
        tx = jobs.transaction(lease=10)
        assert tx.expires_at == clock.now() + 10
        assert tx.take(("job", int)) == ("job", 1)
        tx.write(("result", 1))
        assert node.statistics()["held_transactions"] == 1
        # Nothing more comes from the client: the node's clock ends the lease.
        clock.advance(10)
        assert served.read_all((str, int)) == [("job", 1), ("job", 2)]
        assert node.statistics()["held_transactions"] == 0
        with pytest.raises(ts.TransactionAborted):
            tx.try_read(("job", int))


def test_operations_on_a_transaction_the_node_ended_say_how_it_ended(node: ts.Node) -> None:
    clock = ts.SimulatedClock()
    served = node.space("jobs", clock=clock)
    served.write(("job", 1))
    with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE) as jobs:
        ran_out = jobs.transaction(lease=10)
        assert ran_out.take(("job", int)) == ("job", 1)
        clock.advance(10)  # the node aborts it; this side does not know yet
        with pytest.raises(ts.TransactionAborted):
            ran_out.write(("result", 1))
        assert ran_out.state == "aborted"
        with pytest.raises(ts.InvalidValue, match="positive number of seconds"):
            jobs.transaction(lease=0)
        with jobs.transaction() as tx:
            with pytest.raises(ts.InvalidValue, match="positive number of seconds"):
                tx.renew(None)
            tx.renew(30)
            assert tx.expires_at == clock.now() + 30
    assert served.read_all(("job", int)) == [("job", 1)]


def test_transactions_and_claims_are_bounded_per_host() -> None:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, max_transactions=2) as node:
        served = node.space("jobs")
        served.write_many([("job", 1), ("job", 2)])
        with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE) as jobs:
            first, second = jobs.transaction(), jobs.transaction()
            with pytest.raises(ts.LimitReached) as caught:
                jobs.transaction()
            assert (caught.value.limit, caught.value.maximum) == ("max_transactions", 2)
            with pytest.raises(ts.LimitReached):
                jobs.take(("job", int))  # a take's claim is held too
            assert served.count(("job", int)) == 2  # and nothing was taken
            first.commit()
            second.abort()
            assert jobs.take(("job", int)) == ("job", 1)
            assert node.statistics()["held_transactions"] == node.statistics()["held_claims"] == 0
    with pytest.raises(ts.InvalidValue, match="claim_lease"):
        ts.Node("coap://127.0.0.1:0/", claim_lease=0)


def test_the_calls_a_host_has_under_way_are_bounded() -> None:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, max_waiting=2) as node:
        served = node.space("jobs")
        url = node.base_uri + "spaces/jobs"
        with ts.connect(url, timeout=PATIENCE) as jobs, ts.connect(url, timeout=PATIENCE) as again:
            takers = [spawn(jobs.take, ("job", int)) for _ in range(2)]
            wait_for_waiters(served, 2)
            assert node.statistics()["calls"] == 2
            with pytest.raises(ts.LimitReached) as info:
                again.take(("job", int))  # from another port of the same host
            assert (info.value.limit, info.value.maximum) == ("max_waiting", 2)
            assert again.statistics()["waiters"] == 2  # what answers at once is answered
            served.write_many([("job", 1), ("job", 2)])
            assert sorted(taker.result(PATIENCE) for taker in takers) == [("job", 1), ("job", 2)]
            wait_until(lambda: node.statistics()["calls"] == 0, "the calls to be done")
            again.write(("job", 3))
            assert again.take(("job", int)) == ("job", 3)
    for bad in (0, 1.5):
        with pytest.raises(ts.InvalidValue, match="max_waiting"):
            ts.Node("coap://127.0.0.1:0/", max_waiting=bad)  # type: ignore[arg-type]


def ask(node: ts.Node, code: int, *query: str, template: object = None) -> Message:
    """A request to the node's space ``jobs`` with ``query``; a FETCH carries ``template``."""
    options = [(URI_PATH, b"spaces"), (URI_PATH, b"jobs")]
    payload = b""
    if code == FETCH:
        options.append((CONTENT_FORMAT, bytes((50,))))
        payload = encode_template(template)
    options += [(URI_QUERY, q.encode()) for q in query]
    return node.endpoint.request_blocking(("127.0.0.1", node.port), code, options, payload, PATIENCE)


def test_the_node_answers_claims_and_transactions_precisely(node: ts.Node) -> None:
    served = node.space("jobs")
    served.write(("job", 1))
    job = ("job", int)
    refused = {
        "bad_request": [
            ask(node, POST, "op=confirm"),
            ask(node, FETCH, "op=read", "claim=1", template=job),
            ask(node, FETCH, "op=replace", "tx=x", template=job),
            ask(node, POST, "op=frobnicate"),
            ask(node, POST, "op=write", "claim=x"),
        ],
        "invalid_value": [
            ask(node, FETCH, "op=take", "claim=yes", template=job),
            ask(node, POST, "op=begin", "lease=0"),
            ask(node, FETCH, "op=read_all", "limit=\u00b2", template=job),  # not an ASCII digit
            ask(node, FETCH, "op=read_all", "after=\u0661", template=job),
        ],
        "unknown_transaction": [
            ask(node, FETCH, "op=take", "tx=nope", template=job),
            ask(node, POST, "op=commit", "tx=nope"),
        ],
        "unknown_claim": [ask(node, POST, "op=confirm", "claim=nope")],
    }
    for code, answers in refused.items():
        for answer in answers:
            assert answer.code >> 5 == 4, (code, answer)
            assert orjson.loads(answer.payload)["error"]["code"] == code
    assert served.read_all(job) == [("job", 1)]
    given_twice = {  # a parameter given twice is refused, naming it, rather than settled silently
        "lease": ask(node, POST, "lease=1", "lease=2"),
        "op": ask(node, FETCH, "op=read", "op=take", template=job),
        "limit": ask(node, FETCH, "op=read_all", "limit=1", "limit=2", template=job),
    }
    for name, answer in given_twice.items():
        assert answer.code == 128, (name, answer)  # 4.00
        refused = orjson.loads(answer.payload)["error"]
        assert (refused["code"], refused["field"]) == ("bad_request", name)
        assert "more than once" in refused["message"]
    nothing = ts.decode_cbor(ask(node, FETCH, "op=take", "claim=1", "timeout=0", template=("other",)).payload)
    assert nothing == {"tuple": None}  # nothing taken: no claim
    taken = ts.decode_cbor(ask(node, FETCH, "op=take", "claim=1", "timeout=0", template=job).payload)
    assert (taken["tuple"], taken["lease"]) == (("job", 1), 30)
    for _ in range(2):  # confirmed again: still final
        assert ask(node, POST, "op=confirm", f"claim={taken['claim']}").code == 0x44  # 2.04
    assert served.read_all(job) == []
    assert node.statistics()["held_claims"] == 0


def test_large_answers_come_block_by_block_and_page_by_page() -> None:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, max_results=4, max_answer=3000) as node:
        served = node.space("jobs")
        rows = [("job", n, "x" * 400) for n in range(10)]
        served.write_many(rows)
        with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE) as jobs:
            assert jobs.read_all(("job", int, str)) == rows  # 4 answers of at most 3000 bytes
            assert jobs.read_all(("job", int, str), limit=5) == rows[:5]
            assert jobs.take_all(("job", int, str), limit=7) == rows[:7]
            assert jobs.take_all(("job", int, str)) == rows[7:]
            assert jobs.take_all(("job", int, str), timeout=0.1) == []
        assert served.count(("job", ts.ANY, ts.ANY)) == 0


def test_the_asyncio_face_runs_on_the_callers_loop(node: ts.Node) -> None:
    served = node.space("jobs")

    async def main() -> None:
        jobs = await ts.connect_async(node.base_uri + "spaces/jobs", timeout=PATIENCE)
        assert repr(jobs).startswith("AsyncCoapSpace(")
        assert jobs.name == served.name == "jobs"
        taken = asyncio.ensure_future(jobs.take(("job", int)))
        await asyncio.to_thread(wait_for_waiters, served, 1)
        lease = await jobs.write(("job", 1), lease=60)
        assert await taken == ("job", 1)
        with pytest.raises(ts.UnknownLease):
            await lease.cancel()
        await jobs.write_many([("job", 2), ("job", 3)])
        assert await jobs.write_if_absent(("job", 2), ("job", 4)) is False
        assert await jobs.replace(("job", 3), ("job", 5)) == ("job", 3)
        assert await jobs.take_all(("job", int)) == [("job", 2), ("job", 5)]
        assert (await jobs.statistics())["waiters"] == 0
        waiting = asyncio.ensure_future(jobs.read(("never",)))
        await asyncio.to_thread(wait_for_waiters, served, 1)
        await jobs.close()
        with pytest.raises(ts.SpaceClosed):
            await waiting
        with pytest.raises(ts.SpaceClosed):
            await jobs.count(("job", int))

    asyncio.run(main())


def test_a_close_releases_the_calls_waiting_for_an_answer(node: ts.Node) -> None:
    served = node.space("jobs", capacity=1)
    served.write(("full",))
    jobs = ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE)
    taken = spawn(jobs.take, ("job", int))
    written = spawn(jobs.write, ("job", 1))
    wait_for_waiters(served, 2)
    jobs.close()
    for call in (taken, written):
        with pytest.raises(ts.SpaceClosed):
            call.result(PATIENCE)
    with pytest.raises(ts.SpaceClosed):
        jobs.try_read(("job", int))


def test_a_close_ends_the_calls_waiting_at_the_node_which_take_nothing_after(node: ts.Node) -> None:
    served = node.space("jobs", capacity=1)
    served.write(("full",))
    jobs = ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE)
    calls = [
        spawn(jobs.take, ("job", int)),
        spawn(jobs.take, ("job", int), timeout=PATIENCE * 10),
        spawn(jobs.read_all, ("other",), timeout=None),
        spawn(jobs.write, ("job", 1)),  # waiting for room
    ]
    wait_for_waiters(served, 4)
    assert node.statistics()["session_calls"] == 4
    jobs.close()
    assert served.statistics()["waiters"] == 0  # ended before close returned
    assert node.statistics()["session_calls"] == node.statistics()["held_claims"] == 0
    for call in calls:
        with pytest.raises(ts.SpaceClosed):
            call.result(PATIENCE)
    served.take(("full",))
    served.write(("job", 2))  # the takes ended: nobody takes it
    assert served.count(("job", int)) == 1
    assert jobs.statistics()["closed"] is True  # from a socket of its own
    assert jobs.statistics()["tuples"] == 1


def test_a_call_of_a_closed_session_is_refused_and_close_names_a_session(node: ts.Node) -> None:
    served = node.space("jobs")
    served.write(("job", 1))
    with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE) as jobs:
        jobs.read(("job", int))  # a call that may wait: closing ends its session
        ended = jobs.session
    with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE) as late:
        late.session = ended  # as a request of the closed client arriving after its close
        with pytest.raises(ts.InvalidValue, match="closed by its client"):
            late.take(("job", int))
        assert served.count(("job", int)) == 1
        late.session = "x"
        with pytest.raises(ts.InvalidValue, match="8 to 64"):
            late.take(("job", int))
        options = [(URI_PATH, b"spaces"), (URI_PATH, b"jobs"), (URI_QUERY, b"op=close")]
        answer = late.endpoint.request_blocking(late.peer, POST, options, timeout=PATIENCE)
        assert answer.code == 128  # 4.00
        assert orjson.loads(answer.payload)["error"]["field"] == "session"


def test_the_ended_sessions_remembered_are_kept_per_host_and_bounded() -> None:
    sessions = Sessions()

    async def end(host: str, ids: Iterable[str]) -> None:
        for session in ids:
            await sessions.end(Asker(host, host), session)

    asyncio.run(end("10.0.0.1", ["theirs-0"]))
    asyncio.run(end("10.0.0.2", (f"mine-{n:05}" for n in range(ENDED_KEPT + 1))))  # ended or made up
    with pytest.raises(ApiError, match="closed by its client"):
        sessions.check_open("10.0.0.1", "theirs-0")  # another host's many did not push it out
    sessions.check_open("10.0.0.2", "mine-00000")  # its own later ones did
    with pytest.raises(ApiError):
        sessions.check_open("10.0.0.2", f"mine-{ENDED_KEPT:05}")
    sessions.check_open("10.0.0.3", f"mine-{ENDED_KEPT:05}")  # another host's session of that id
    assert sessions.statistics()["ended_sessions"] == 1 + ENDED_PER_HOST
    for host in range(ENDED_KEPT // ENDED_PER_HOST):  # as many hosts as fill the bound
        asyncio.run(end(f"10.1.{host}.1", (f"many-{n:05}" for n in range(ENDED_PER_HOST))))
    assert sessions.statistics()["ended_sessions"] <= ENDED_KEPT
    sessions.check_open("10.0.0.1", "theirs-0")  # the host that ended one the longest ago gave way
    with pytest.raises(ApiError):
        sessions.check_open("10.1.0.1", "many-00000")


def test_a_session_an_oscore_peer_ended_from_two_hosts_is_remembered_once() -> None:
    sessions = Sessions()
    first, second = Asker("10.0.0.1", "peer b"), Asker("10.0.0.2", "peer b")

    async def end() -> None:
        await sessions.end(first, "moving-1")
        await sessions.end(second, "moving-1")  # the same session, from the peer's new address
        for n in range(ENDED_PER_HOST + 1):  # its first host's own later ones push it out there
            await sessions.end(first, f"later-{n:04}")

    asyncio.run(end())
    with pytest.raises(ApiError, match="closed by its client"):
        sessions.check_open("peer b", "moving-1")  # remembered for the host that ended it last
    sessions.check_open("10.0.0.1", "moving-1")  # the anonymous peer of that host has its own
    assert sessions.statistics()["ended_sessions"] == 1 + ENDED_PER_HOST


def test_the_ended_transactions_remembered_are_kept_per_host() -> None:
    class Committed:  # what the table reads of a transaction that ended
        state = "committed"

    table = HeldTable(max_per_host=ENDED_KEPT + 1)
    them, me = Asker("10.0.0.1", "10.0.0.1"), Asker("10.0.0.2", "10.0.0.2")
    theirs = table.add("claim", "jobs", Committed(), them)  # type: ignore[arg-type]
    table.forget(theirs.id)
    mine = [table.add("transaction", "jobs", Committed(), me) for _ in range(ENDED_KEPT + 1)]  # type: ignore[arg-type]
    for held in mine:
        table.forget(held.id)
    assert table.ended_state(theirs.id, them.owner) == "committed"  # another host's many did not push it out
    assert table.ended_state(mine[0].id, me.owner) is None  # its own later ones did
    assert table.ended_state(mine[-1].id, me.owner) == "committed"
    assert table.ended_state(mine[-1].id, them.owner) is None  # how it ended is told to its owner only


def test_records_over_coap_are_remote_handles_that_refresh_and_observe(node: ts.Node) -> None:
    served = node.space("home")
    with ts.connect(node.base_uri + "spaces/home", timeout=PATIENCE) as home:
        rec = home.create("kitchen", {"temp": 21.5}, lease=10)
        assert isinstance(rec, ts.RemoteRecord)
        assert rec == home.record("kitchen") == home.record(rec.address) == home.record(rec)
        assert rec.address == served.record("kitchen").address
        expires = rec.refresh(lease=3600)
        assert isinstance(expires, float)
        lifetime = served.record("kitchen").get("$lifetime")
        assert isinstance(lifetime, float)
        assert 3000 < lifetime <= 3600
        with pytest.raises(ts.InvalidValue):
            rec.refresh()
        with pytest.raises(ts.RecordNotFound):
            home.record("tuplespace://local/spaces/home/kitchen")
        seen: list[ts.Value] = []
        upcall = rec.on_change(seen.append, tag="temp")
        served.record("kitchen").set("temp", 22.0)
        wait_until(lambda: seen[-1:] == [22.0], "the observed set")
        assert upcall.active
    assert not upcall.active  # the space's close ended it
    with pytest.raises(ts.SpaceClosed):
        rec.get("temp")


def test_find_past_the_nodes_max_results_asks_for_a_limit() -> None:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, max_results=3) as node:
        served = node.space("home")
        for n in range(5):
            served.create(f"r/{n}", {"kind": "x", "n": n})
        with ts.connect(node.base_uri + "spaces/home", timeout=PATIENCE) as home:
            with pytest.raises(ts.LimitReached) as info:
                home.find({"kind": "x"})
            assert (info.value.limit, info.value.maximum) == ("max_results", 3)
            assert [r.get("n") for r in home.find({"kind": "x"}, limit=3)] == [0, 1, 2]
            assert len(home.find({"kind": "x"}, under="r", limit=2)) == 2
            assert home.try_take_record({"n": 4}, under="r") == ts.RecordData(
                served.base_uri + "spaces/home/r/4", {"kind": "x", "n": 4}
            )
            assert home.take_record({"n": 3}, timeout=0).fields == {"kind": "x", "n": 3}
            assert [r.get("n") for r in home.find({"kind": "x"})] == [0, 1, 2]  # no more than 3


def test_the_asyncio_face_has_records(node: ts.Node) -> None:
    served = node.space("home")

    async def main() -> None:
        async with await ts.connect_async(node.base_uri + "spaces/home", timeout=PATIENCE) as home:
            rec = await home.create("jobs/1", {"state": "new"})
            assert await rec.set("state", "ready") == 2
            assert await rec.view("state", "$version") == ("ready", 2)
            assert (await home.find({"state": "ready"})) == [rec]
            taker = asyncio.ensure_future(home.take_record({"state": "done"}, "jobs", PATIENCE))
            await asyncio.to_thread(wait_until, lambda: served.statistics()["record_takers"] == 1, "a taker")
            await rec.set("state", "done")
            assert (await taker).fields == {"state": "done"}
            with pytest.raises(ts.RecordNotFound):
                await rec.all()
            with pytest.raises(ts.Timeout):
                await home.take_record({"state": "done"}, timeout=0)

    asyncio.run(main())


def test_a_record_handle_over_coap_moves_its_record_to_another_node(node: ts.Node) -> None:
    node.space("home")
    with (
        ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as other,
        ts.connect(node.base_uri + "spaces/home", timeout=PATIENCE) as home,
    ):
        house = other.space("house")
        rec = home.create("kitchen", {"temp": 21.5})
        to = other.base_uri + "spaces/house/kitchen"
        rec.move(to)
        assert rec.address == ts.URI(to)
        assert rec.set("temp", 22.0) == 2  # at the other node now
        assert house.record("kitchen").get("temp") == 22.0
        assert home.record("kitchen").address == ts.URI(to)  # the old address redirects
        copy = rec.clone("pantry")
        assert copy.address == ts.URI(other.base_uri + "spaces/house/pantry")
        assert house.record("pantry").all() == {"temp": 22.0}


def test_record_takes_waiting_at_the_node_are_bounded(node: ts.Node) -> None:
    served = node.space("home", max_waiters=1)
    with ts.connect(node.base_uri + "spaces/home", timeout=PATIENCE) as home:
        taker = spawn(home.take_record, {"kind": "job"}, None, PATIENCE)
        wait_until(lambda: served.statistics()["record_takers"] == 1, "the taker to wait")
        with pytest.raises(ts.LimitReached) as info:
            home.take_record({"kind": "job"})
        assert info.value.limit == "max_waiters"
        served.create("jobs/1", {"kind": "job"})
        assert taker.result(PATIENCE).fields == {"kind": "job"}


# -- rules and methods -----------------------------------------------------------------------


HOT = {"template": ("reading", str, float), "when": "t[2] > 30.0", "write": [("alarm", "t[1]")]}
BUMP = "function(self, d) self.target = self.target + d return self.target end"


def test_rules_and_methods_follow_the_nodes_permissions() -> None:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, anonymous="read") as reader:
        served = reader.space("home")
        served.rules.add("hot", **HOT)
        thermo = served.create("thermostat", {"target": 21.0, "bump": ts.Method(BUMP)})
        with ts.connect(reader.base_uri + "spaces/home", timeout=PATIENCE) as home:
            assert [(r.name, r.fired) for r in home.rules.list()] == [("hot", 0)]
            assert home.rules.get("hot").when == "t[2] > 30.0"
            with pytest.raises(ts.Unauthorized):
                home.rules.add("cold", template=("reading", str, float), write=[("frost", "t[1]")])
            with pytest.raises(ts.Unauthorized):
                home.rules.remove("hot")
            with pytest.raises(ts.Unauthorized):
                home.record("thermostat").call("bump", 1.0)
        assert [r.name for r in served.rules.list()] == ["hot"]
        assert thermo.get("target") == 21.0
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, anonymous="read+write") as writer:
        served = writer.space("home")
        thermo = served.create("thermostat", {"target": 21.0, "bump": ts.Method(BUMP)})
        with ts.connect(writer.base_uri + "spaces/home", timeout=PATIENCE) as home:
            assert home.rules.add("hot", **HOT).principal == served.rules.get("hot").principal
            with pytest.raises(ts.Unauthorized):  # another account pays: for a peer allowed all
                home.rules.add(
                    "cold", template=("reading", str, float), write=[("frost", "t[1]")], principal="ops"
                )
            assert home.record("thermostat").call("bump", 1.0) == 22.0
            with pytest.raises(ts.Unauthorized):
                home.record("thermostat").call("bump", 1.0, principal="ops")
            home.rules.remove("hot")
        assert served.rules.list() == []
        assert thermo.get("target") == 22.0


def test_a_rule_added_over_coap_fires_counts_and_names_its_principal(node: ts.Node) -> None:
    served = node.space("home")
    served.grant_credit("ops", 1)
    with ts.connect(node.base_uri + "spaces/home", timeout=PATIENCE) as home:
        added = home.rules.add("hot", principal="ops", **HOT)
        assert (added.principal, added.level, added.kind) == ("ops", 1, "reaction")
        home.write(("reading", "kitchen", 31.0))
        home.write(("reading", "hall", 12.0))
        assert home.read_all(("alarm", str)) == [("alarm", "kitchen")]
        home.rules.add("odd", template=("odd", int), when="t[1]", write=[("never",)])
        home.write(("odd", 1))
        hot, odd = home.rules.get("hot"), home.rules.get("odd")
        assert (hot.fired, hot.failed, hot.last_error) == (1, 0, None)
        assert (odd.fired, odd.failed) == (0, 1)
        assert isinstance(odd.last_error, ts.EvaluationError)
        assert [r.name for r in home.rules.list()] == [r.name for r in served.rules.list()] == ["hot", "odd"]
        with pytest.raises(ts.RuleExists):
            home.rules.add("hot", **HOT)
        with pytest.raises(ts.RuleNotFound):
            home.rules.get("nothing")
        with pytest.raises(ts.RuleNotFound):
            home.rules.remove("nothing")


def test_a_space_over_coap_holds_at_most_its_max_rules(node: ts.Node) -> None:
    node.space("home").rules.max_rules = 2
    with ts.connect(node.base_uri + "spaces/home", timeout=PATIENCE) as home:
        home.rules.add("a", template=("a",), write=[("x",)])
        home.rules.add("b", template=("b",), write=[("y",)])
        with pytest.raises(ts.LimitReached) as caught:
            home.rules.add("c", template=("c",), write=[("z",)])
        assert (caught.value.limit, caught.value.maximum) == ("max_rules", 2)
        assert [r.name for r in home.rules.list()] == ["a", "b"]


def test_the_rules_resource_refuses_bad_requests_clearly(node: ts.Node) -> None:
    served = node.space("home")

    def send(code: int, path: tuple[str, ...], payload: bytes, *options: tuple[int, bytes]) -> Message:
        request = [*((URI_PATH, s.encode()) for s in ("spaces", *path)), *options]
        return node.endpoint.request_blocking(("127.0.0.1", node.port), code, request, payload, PATIENCE)

    rule = b'{"name":"r","template":[{"$formal":"int"}],"write":[["done"]]}'
    json = (CONTENT_FORMAT, b"\x32")
    assert send(POST, ("home", "$rules"), rule).code == 0x8F  # 4.15: a rule is JSON
    for payload, field in [
        (b'{"name":"r","template":[{"$formal":"int"}],"write":[["done"]],"principal":"ops"}', "principal"),
        (b'{"name":"r","template":[{"$formal":"int"}],"writes":[["done"]]}', "writes"),
        (b'{"name":"r","template":[{"$formal":"int"}],"write":[[{"$float":"x"}]]}', "write[0][0]"),
    ]:
        answer = send(POST, ("home", "$rules"), payload, json)
        assert answer.code == 0x80  # 4.00
        assert orjson.loads(answer.payload)["error"]["field"] == field
    thermo = served.create("thermostat", {"target": 21.0, "bump": ts.Method(BUMP)})
    # a call names the field of its method; a principal pays, not for a move
    for queries, field in [(("op=call",), "tag"), (("op=move", "principal=ops", "to=t"), "principal")]:
        answer = send(POST, ("home", "thermostat"), b"", *((URI_QUERY, q.encode()) for q in queries))
        assert answer.code == 0x80
        assert orjson.loads(answer.payload)["error"]["field"] == field
    assert thermo.all() == ts.Map({"target": 21.0, "bump": ts.Method(BUMP)})
    assert send(POST, ("home", "$rules", "r"), rule, json).code == 0x85  # 4.05
    assert send(FETCH, ("home", "$rules"), rule, json).code == 0x85
    assert send(POST, ("nowhere", "$rules"), rule, json).code == 0x84  # 4.04
    assert served.rules.list() == []
    assert send(POST, ("home", "$rules"), rule, json).code == 0x41  # 2.01
    assert [r.name for r in served.rules.list()] == ["r"]


def test_a_rule_past_max_rule_bytes_is_refused_over_coap_as_over_http(node: ts.Node) -> None:
    served = node.space("home")
    most = ts.server.ServerLimits().max_rule_bytes
    with ts.connect(node.base_uri + "spaces/home", timeout=PATIENCE) as home:
        with pytest.raises(ts.ValueTooLarge) as caught:
            home.rules.add("big", template=("x" * most,), write=[("done",)])
        assert (caught.value.limit, caught.value.maximum) == ("max_rule_bytes", most)
        assert served.rules.list() == []
        home.rules.add("small", template=("x",), write=[("done",)])
    assert [r.name for r in served.rules.list()] == ["small"]


def test_the_asyncio_face_has_rules_and_calls_methods(node: ts.Node) -> None:
    served = node.space("home")
    served.create("thermostat", {"target": 21.0, "bump": ts.Method(BUMP)})

    async def main() -> None:
        async with await ts.connect_async(node.base_uri + "spaces/home", timeout=PATIENCE) as home:
            await home.rules.add("hot", **HOT)
            await home.write(("reading", "kitchen", 31.0))
            assert (await home.rules.get("hot")).fired == 1
            assert [r.name for r in await home.rules.list()] == ["hot"]
            await home.rules.remove("hot")
            thermo = await home.record("thermostat")
            assert await thermo.call("bump", 0.5) == 21.5

    asyncio.run(main())
    assert served.rules.list() == []
    assert served.read_all(("alarm", str)) == [("alarm", "kitchen")]


def test_the_options_of_a_space_are_read_from_its_node(node: ts.Node) -> None:
    home = node.space(
        "home",
        order="lifo",
        capacity=50,
        limits=ts.Limits(max_fields=8, max_depth=4, max_bytes=4096),
        clock=ts.SimulatedClock(),
        charge_rate="0.5",
        creation_charge="2",
        redirect_charge="0.25",
        firing_charge="0.01",
        step_charge="0.000001",
        max_firings=40,
        operator="acme",
        mint_amount="3",
        mint_bits=12,
    )
    with ts.connect(node.base_uri + "spaces/home", timeout=PATIENCE) as space:
        assert (space.order, space.capacity, space.limits) == ("lifo", 50, home.limits)
        assert (space.charge_rate, space.creation_charge, space.redirect_charge) == (
            ts.Credit("0.5"),
            ts.Credit("2"),
            ts.Credit("0.25"),
        )
        assert (space.firing_charge, space.step_charge, space.max_firings) == (
            ts.Credit("0.01"),
            ts.Credit("0.000001"),
            40,
        )
        assert (space.operator, space.mint_amount, space.mint_bits) == ("acme", ts.Credit("3"), 12)
        assert space.read_options()["clock"] == "simulated"
        assert space.rules.limits == home.rules.limits == ts.ActiveLimits(max_firings=40)
        # The rules' limits and charges are set on the node: read again, they are the new ones.
        home.rules.limits = ts.ActiveLimits(max_firings=7, method_steps=500)
        home.rules.firing_charge = "0.5"
        assert space.rules.limits == ts.ActiveLimits(max_firings=7, method_steps=500)
        assert (space.rules.firing_charge, space.firing_charge, space.max_firings) == (
            ts.Credit("0.5"),
            ts.Credit("0.5"),
            7,
        )
        assert space.rules.step_charge == ts.Credit("0.000001")
        with pytest.raises(AttributeError):
            space.capacity = 10  # type: ignore[misc]  # set on the node, not over CoAP


def test_the_async_face_has_the_options_it_read_last(node: ts.Node) -> None:
    home = node.space("home", capacity=5, firing_charge="1")

    async def main() -> None:
        async with await ts.connect_async(node.base_uri + "spaces/home", timeout=PATIENCE) as space:
            with pytest.raises(ts.TupleSpaceError, match=r"not read yet: await space.read_options\(\)"):
                space.capacity  # noqa: B018
            await space.read_options()
            assert (space.order, space.capacity, space.firing_charge) == ("fifo", 5, ts.Credit("1"))
            home.rules.firing_charge = "2"
            assert space.rules.firing_charge == ts.Credit("1")  # as read last
            options = await space.read_options()
            assert options["firing_charge"] == space.rules.firing_charge == ts.Credit("2")
            assert options["clock"] == "system"

    asyncio.run(main())


def test_a_space_over_coap_sets_its_charges_and_method_limits_on_its_node(node: ts.Node) -> None:
    home = node.space("home", firing_charge="1")
    options = {"firing_charge": "0.25", "step_charge": "0.001", "max_firings": 9, "method_steps": 5000}
    with ts.connect(node.base_uri + "spaces/home", timeout=PATIENCE) as space:
        space.set_options(options)
        assert (home.firing_charge, home.step_charge) == (ts.Credit("0.25"), ts.Credit("0.001"))
        assert home.rules.limits == ts.ActiveLimits(max_firings=9, method_steps=5000)
        assert (space.rules.firing_charge, space.max_firings, space.rules.limits) == (
            ts.Credit("0.25"),
            9,
            home.rules.limits,
        )
        space.set_options({"method_ms": 200, "method_memory": 1 << 20})  # the others are kept
        assert home.rules.limits == ts.ActiveLimits(9, 5000, 200, 1 << 20)
        for bad, field in [
            ({"max_firings": 0}, "max_firings"),
            ({"method_memory": (16 << 20) + 1}, "method_memory"),
            ({"step_charge": "-1"}, "step_charge"),
            ({"firing_charge": 1.5}, "firing_charge"),
            ({"max_firings": 5, "capacity": 3}, "capacity"),  # set on the node
        ]:
            with pytest.raises(ts.InvalidValue, match=f"^{field}: "):
                space.set_options({"firing_charge": "7", **bad})
        assert home.firing_charge == ts.Credit("0.25")  # all or none
        assert home.rules.limits == ts.ActiveLimits(9, 5000, 200, 1 << 20)
        assert home.capacity is None

    async def main() -> None:
        async with await ts.connect_async(node.base_uri + "spaces/home", timeout=PATIENCE) as space:
            await space.set_options({"step_charge": "2", "max_firings": 3})
            assert (space.step_charge, space.rules.limits.max_firings) == (ts.Credit("2"), 3)

    asyncio.run(main())
    assert (home.step_charge, home.max_firings) == (ts.Credit("2"), 3)


def test_the_options_of_a_space_are_checked_over_coap_as_over_http(node: ts.Node) -> None:
    """A bad option answers the same error (code, message, field) over CoAP as the
    HTTP API's PUT /spaces/{space}, whose check both call."""
    from test_server import client, running

    node.space("home")
    cases: list[dict[str, object]] = [
        {"max_firings": 100_001},
        {"method_steps": "5"},
        {"method_ms": 1_001},
        {"firing_charge": None},
        {"step_charge": "x"},
    ]
    with running() as server, client(server) as http:
        for body in cases:
            over_http = http.put("/spaces/home", json=body)
            over_coap = node.endpoint.request_blocking(
                ("127.0.0.1", node.port),
                PUT,
                [
                    (URI_PATH, b"spaces"),
                    (URI_PATH, b"home"),
                    (CONTENT_FORMAT, b"\x32"),
                    (URI_QUERY, b"options"),
                ],
                orjson.dumps(body),
                PATIENCE,
            )
            assert over_http.status_code == 400, body
            assert over_coap.code == 0x80, body  # 4.00
            assert orjson.loads(over_coap.payload) == over_http.json(), body
    assert node.space("home").rules.limits == ts.ActiveLimits()


def test_a_space_over_coap_reads_and_moves_its_simulated_clock(node: ts.Node) -> None:
    clock = ts.SimulatedClock()
    served = node.space("sim", clock=clock)
    with ts.connect(node.base_uri + "spaces/sim", timeout=PATIENCE) as sim:
        start = sim.clock.now()
        assert start == clock.now() == ts.SimulatedClock().now()
        sim.rules.add("gone", on="expire", template=("job", int), write=[(ts.Lit("gone"), "t[1]")])
        sim.write(("job", 1), lease=10)
        taken = spawn(sim.take, ("late",), timeout=30)
        wait_for_waiters(served, 1)
        sim.clock.advance(9)
        assert sim.count(("job", int)) == 1
        sim.clock.advance(2)  # no real time passes: the lease ran out on the space's clock
        assert sim.read_all((str, int)) == [("gone", 1)]
        assert sim.clock.now() == clock.now() == start + 11
        sim.clock.advance(20)  # and so did the take's wait, at the node
        with pytest.raises(ts.Timeout):
            taken.result(PATIENCE)

    async def main() -> None:
        async with await ts.connect_async(node.base_uri + "spaces/sim", timeout=PATIENCE) as asim:
            assert await asim.clock.now() == start + 31
            await asim.clock.advance(0.5)
            assert await asim.clock.now() == start + 31.5

    asyncio.run(main())
    assert clock.now() == start + 31.5


def test_the_clock_over_coap_refuses_what_http_refuses_and_moves_nothing(node: ts.Node) -> None:
    """A bad advance, or one of a space on the system clock, answers the same error
    (code, message, field) over CoAP as the HTTP API's POST /spaces/{space}/clock,
    whose checks both call; CoapSpace raises it as RemoteSpace does."""
    from test_server import client, running

    clock = ts.SimulatedClock()
    node.space("sim", clock=clock)
    node.space("plant")
    node.space("jobs")
    cases: list[tuple[str, object]] = [("sim", bad) for bad in (0, -1, None, "5", True, 1e12)]
    cases += [("sim", {"advance": 5, "by": "me"}), ("sim", {}), ("plant", 5)]

    def advance_over_coap(name: str, body: object) -> Message:
        options = [(URI_PATH, b"spaces"), (URI_PATH, name.encode()), (CONTENT_FORMAT, b"\x32")]
        options.append((URI_QUERY, b"op=advance"))
        payload = orjson.dumps(body)
        return node.endpoint.request_blocking(("127.0.0.1", node.port), POST, options, payload, PATIENCE)

    with running() as server, client(server) as http:
        assert http.put("/spaces/sim", json={"clock": "simulated"}).status_code == 201
        assert http.put("/spaces/plant").status_code == 201
        for name, bad in cases:
            body = bad if isinstance(bad, dict) else {"advance": bad}
            over_http = http.post(f"/spaces/{name}/clock", json=body)
            over_coap = advance_over_coap(name, body)
            assert over_http.status_code in (400, 409), body
            assert over_coap.code == (over_http.status_code // 100) << 5 | over_http.status_code % 100, body
            assert orjson.loads(over_coap.payload) == over_http.json(), body
    with ts.connect(node.base_uri + "spaces/sim", timeout=PATIENCE) as sim:
        for bad in (0, -1, "5", True, 1e12):
            with pytest.raises(ts.InvalidValue) as caught:
                sim.clock.advance(bad)  # type: ignore[arg-type]
            assert caught.value.path == "advance"
        assert sim.clock.now() == clock.now() == ts.SimulatedClock().now()
    with ts.connect(node.base_uri + "spaces/plant", timeout=PATIENCE) as plant:
        with pytest.raises(ts.Conflict, match="system clock") as refused:
            plant.clock.advance(5)
        assert error_code(refused.value) == "real_clock"
    answer = advance_over_coap("sim", [5])
    assert (answer.code, orjson.loads(answer.payload)["error"]["code"]) == (0x80, "bad_request")
    both = ask(node, GET, "options", "clock")
    assert (both.code, orjson.loads(both.payload)["error"]["code"]) == (0x80, "bad_request")
    assert clock.now() == ts.SimulatedClock().now()


def test_a_fetch_carries_its_template_in_cbor_or_json(node: ts.Node) -> None:
    served = node.space("jobs")
    served.write_many([("job", 1), ("job", 2.0)])
    served.create("r/a", {"kind": "job", "n": 1})
    served.create("r/b", {"kind": "job", "n": 3})

    def fetch(payload: object, *query: str) -> object:
        options = [(URI_PATH, b"spaces"), (URI_PATH, b"jobs"), (CONTENT_FORMAT, bytes((60,)))]
        options += [(URI_QUERY, q.encode()) for q in query]
        data = ts.encode_cbor(payload)  # type: ignore[arg-type]
        answer = node.endpoint.request_blocking(("127.0.0.1", node.port), FETCH, options, data, PATIENCE)
        assert answer.code >> 5 == 2, answer
        return ts.decode_cbor(answer.payload)

    formal = ts.Map({"$formal": "int"})
    assert fetch(("job", formal), "op=count") == 1
    assert fetch(("job", ts.Map({"$any": True})), "op=read_all") == {
        "tuples": (("job", 1), ("job", 2.0)),
        "next": None,
    }
    assert fetch(("job", ts.Map({"$range": ts.Map({"low": 1.5})})), "op=take", "timeout=0") == ("job", 2.0)
    assert fetch((("job", formal), ("job", 9)), "op=write_if_absent") is False
    assert fetch((("done", formal), ("done", 1)), "op=write_if_absent") is True
    found = fetch(ts.Map({"kind": "job", "n": ts.Map({"$range": ts.Map({"low": 2})})}), "op=find")
    assert found["records"] == (ts.URI(node.base_uri + "spaces/jobs/r/b"),)  # type: ignore[index]
    taken = fetch(ts.Map({"n": 1}), "op=take_record", "timeout=0")
    assert taken["address"] == ts.URI(node.base_uri + "spaces/jobs/r/a")  # type: ignore[index]
    # The same in JSON, and a template in another format refused clearly.
    json_read = ask(node, FETCH, "op=read", "timeout=0", template=("done", int))
    assert ts.decode_cbor(json_read.payload) == ("done", 1)
    refused = node.endpoint.request_blocking(
        ("127.0.0.1", node.port),
        FETCH,
        [(URI_PATH, b"spaces"), (URI_PATH, b"jobs"), (CONTENT_FORMAT, bytes((0,)))],
        b"[]",
        PATIENCE,
    )
    assert refused.code == 0x8F  # 4.15
    assert "(50) or CBOR (60)" in orjson.loads(refused.payload)["error"]["message"]
    bad = node.endpoint.request_blocking(
        ("127.0.0.1", node.port),
        FETCH,
        [(URI_PATH, b"spaces"), (URI_PATH, b"jobs"), (CONTENT_FORMAT, bytes((60,)))],
        ts.encode_cbor((ts.Map({"$formal": "integer"}),)),
        PATIENCE,
    )
    assert bad.code >> 5 == 4
    assert "integer" in orjson.loads(bad.payload)["error"]["message"]
