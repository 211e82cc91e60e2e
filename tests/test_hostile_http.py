"""The served API as a hostile client tries it: names, numbers and the resources one
client can make a real server on 127.0.0.1 hold."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from helpers import PATIENCE
from test_server import client, error, running
from tuplespace._framing import MAGIC, frame
from tuplespace.server import ServerLimits

JSON = {"Content-Type": "application/json"}


def test_the_spaces_a_server_hosts_are_limited(tmp_path: Path) -> None:
    with running(tmp_path / "data", limits=ServerLimits(max_spaces=2)) as server, client(server) as http:
        assert http.put("/spaces/a").status_code == 201
        assert http.post("/spaces/b/write", json={"tuple": ["x"]}).status_code == 200
        body = error(http.put("/spaces/c"), 429, "limit_reached")
        assert (body["limit"], body["maximum"]) == ("max_spaces", 2)
        body = error(http.post("/spaces/d/write", json={"tuple": ["x"]}), 429, "limit_reached")
        assert body["limit"] == "max_spaces"
        body = error(http.get("/spaces/e/events", params={"template": "[]"}), 429, "limit_reached")
        assert body["limit"] == "max_spaces"
        assert sorted(s["name"] for s in http.get("/spaces").json()["spaces"]) == ["a", "b"]
        assert http.put("/spaces/a").status_code == 200  # one that exists is answered
        assert http.post("/spaces/b/count", json={"template": ["x"]}).json() == {"count": 1}
        assert http.delete("/spaces/a").status_code == 204
        assert http.put("/spaces/c").status_code == 201


def test_a_server_opens_every_space_of_its_store_whatever_its_max_spaces(tmp_path: Path) -> None:
    with running(tmp_path / "data") as server, client(server) as http:
        for name in ("a", "b", "c"):
            assert http.put(f"/spaces/{name}").status_code == 201
    with running(tmp_path / "data", limits=ServerLimits(max_spaces=2)) as server, client(server) as http:
        assert sorted(s["name"] for s in http.get("/spaces").json()["spaces"]) == ["a", "b", "c"]
        assert error(http.put("/spaces/d"), 429, "limit_reached")["limit"] == "max_spaces"


def test_counts_past_63_bits_are_refused_naming_the_field(tmp_path: Path) -> None:
    """JSON integers reach 2**64 - 1 (past it they are floats); a limit or a record's
    id past 2**63 - 1 is a 400 naming it, in a transaction too, and nothing is taken."""
    huge = b"18446744073709551615"
    with running(tmp_path / "data") as server, client(server) as http:
        http.post("/spaces/s/write", json={"tuple": ["x", 1]})
        http.post("/spaces/s/records/create", json={"path": "r", "fields": {"a": 1}})
        tx = http.post("/spaces/s/transactions").json()["id"]
        paths = ["/spaces/s/read_all", "/spaces/s/take_all", f"/spaces/s/transactions/{tx}/take_all"]
        for path in paths:
            for limit in (huge, b"9223372036854775808"):
                r = http.post(path, content=b'{"template": ["x", 1], "limit": ' + limit + b"}", headers=JSON)
                assert error(r, 400, "bad_request")["field"] == "limit", path
        r = http.post(
            "/spaces/s/records/find", content=b'{"template": {}, "limit": ' + huge + b"}", headers=JSON
        )
        assert error(r, 400, "bad_request")["field"] == "limit"
        r = http.post("/spaces/s/records/get", content=b'{"ref": "r", "id": ' + huge + b"}", headers=JSON)
        assert error(r, 400, "bad_request")["field"] == "id"
        assert http.post(f"/spaces/s/transactions/{tx}/commit").status_code == 204
        assert http.post("/spaces/s/count", json={"template": ["x", 1]}).json() == {"count": 1}
        r = http.post(
            "/spaces/s/read_all",
            content=b'{"template": ["x", 1], "limit": 9223372036854775807}',
            headers=JSON,
        )
        assert r.json() == {"tuples": [["x", 1]]}


def test_a_channel_whose_client_does_not_read_serves_no_more_of_its_frames(tmp_path: Path) -> None:
    """Frames that came in the same reads as the ones whose answers its client does not
    read wait, unserved, until it reads: the answers it makes the server hold are those
    of the requests served before it stopped, not of every frame it managed to send."""
    template = {"template": ["big", {"$formal": "int"}, {"$formal": "str"}]}
    with running(tmp_path / "data") as server, client(server) as http:
        for i in range(12):  # a read_all answers some 12 MB
            assert (
                http.post("/spaces/s/write", json={"tuple": ["big", i, "x" * 1_000_000]}).status_code == 200
            )
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(PATIENCE)
            sock.connect(("127.0.0.1", server.port))
            sock.sendall(MAGIC + frame(b"{}"))
            with sock.makefile("rb") as answers:

                def next_answer() -> tuple[bytes, bytes]:
                    data = answers.read(int.from_bytes(answers.read(4), "big"))
                    return data.partition(b"\n")[0], data

                assert json.loads(next_answer()[1])["server"] == "pytuplespace"
                frames = [
                    frame(b"%d POST /spaces/s/read_all\n%s" % (i, json.dumps(template).encode()))
                    for i in (1, 2, 3)
                ]
                marker = frame(b'4 POST /spaces/s/write\n{"tuple": ["marker"]}')
                sock.sendall(b"".join(frames) + marker)
                assert http.post("/spaces/s/count", json={"template": ["marker"]}).json() == {"count": 0}
                heads = sorted(next_answer()[0] for _ in range(4))
                assert heads == [b"1 200", b"2 200", b"3 200", b"4 200"]
        assert http.post("/spaces/s/count", json={"template": ["marker"]}).json() == {"count": 1}
