"""The served API as a hostile client tries it: names, numbers and the resources one
client can make a real server on 127.0.0.1 hold."""

from __future__ import annotations

from pathlib import Path

from test_server import client, error, running
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

