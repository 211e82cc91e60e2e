"""``tuplespace serve --coap``, run as a real process: its OSCORE peers (``--keys``)
checked with aiocoap's OSCORE client, and the same spaces over HTTP and CoAP (written
over one, taken over the other; read by libcoap's client)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiocoap
import httpx
import pytest
from aiocoap.numbers.codes import Code
from aiocoap.oscore import NotAProtectedMessage

import tuplespace as ts
from helpers import PATIENCE, Process, missing, serving
from test_federation_security import _aiocoap_context, _entry, _keys
from tuplespace._codec import encode_template
from tuplespace._federation._loop import LoopThread

SERVE = [sys.executable, "-m", "tuplespace", "serve", "--port", "0"]


class Client:
    """aiocoap's client on a loop of its own, with an OSCORE context for ``base`` when
    ``folder`` holds one (aiocoap's security context directory)."""

    def __init__(self, base: str, folder: Path | None = None) -> None:
        self.base = base
        self.runner = LoopThread("aiocoap")
        transports = ["oscore", "udp6"] if folder is not None else ["udp6"]
        made = aiocoap.Context.create_client_context(transports=transports)
        self.context = self.runner.call(made, PATIENCE)
        if folder is not None:
            self.context.client_credentials.load_from_dict({f"{base}*": {"oscore": {"basedir": str(folder)}}})

    def request(self, code: Code, path: str, payload: bytes = b"", **options: Any) -> aiocoap.Message:
        message = aiocoap.Message(code=code, uri=self.base + path, payload=payload, **options)
        response: aiocoap.Message = self.runner.call(self.context.request(message).response, PATIENCE)
        return response

    def write(self, path: str, value: Any) -> aiocoap.Message:
        return self.request(Code.POST, path, ts.encode_cbor(value), content_format=60)

    def take(self, path: str, template: Any) -> aiocoap.Message:
        payload = encode_template(template)
        return self.request(Code.FETCH, path, payload, content_format=50, uri_query=["op=take", "timeout=0"])

    def close(self) -> None:
        self.runner.stop(self.context.shutdown)


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[tuple[Process, str]]:
    """``serve --coap`` with a keys file naming the peer ``0b`` (read+write); the
    process and the node's base URI."""
    keys = _keys(tmp_path / "keys.json", _entry("b", "0a", "0b"))
    coap = ["--coap", "127.0.0.1:0", "--keys", str(keys), "--coap-space", "jobs"]
    with serving([*SERVE, "--memory", *coap], tmp_path) as process:
        base = process.wait_for(r"node (coap://\S+) serving CoAP").group(1)
        process.url()  # serving, its signals handled
        yield process, base
        assert process.stop(signal.SIGTERM) == 0


def test_serve_with_keys_serves_its_oscore_peers(keyed: tuple[Process, str], tmp_path: Path) -> None:
    _, base = keyed
    _aiocoap_context(tmp_path / "b", sender="0b", recipient="0a", salt="")
    peer = Client(base, tmp_path / "b")
    try:
        assert peer.write("spaces/jobs", (7,)).code == Code.CREATED
        taken = peer.take("spaces/jobs", (int,))
        assert (taken.code, taken.payload) == (Code.CONTENT, ts.encode_cbor((7,)))
    finally:
        peer.close()


def test_serve_with_keys_refuses_a_wrong_or_absent_key(keyed: tuple[Process, str], tmp_path: Path) -> None:
    _, base = keyed
    _aiocoap_context(tmp_path / "right", sender="0b", recipient="0a", salt="")
    (tmp_path / "wrong").mkdir()
    (tmp_path / "wrong" / "settings.json").write_text(
        '{"sender-id_hex": "0b", "recipient-id_hex": "0a", "secret_hex": "' + "ff" * 16 + '"}'
    )
    anonymous, wrong, right = Client(base), Client(base, tmp_path / "wrong"), Client(base, tmp_path / "right")
    try:
        assert anonymous.write("spaces/jobs", (1,)).code == Code.UNAUTHORIZED
        with pytest.raises(NotAProtectedMessage) as refused:  # the node's answer: unprotected
            wrong.write("spaces/jobs", (2,))
        answer = refused.value.plain_message
        assert (answer.code, answer.payload) == (Code.BAD_REQUEST, b"Decryption failed")
        assert right.take("spaces/jobs", (int,)).payload == ts.encode_cbor(None)  # nothing was written
    finally:
        for client in (anonymous, wrong, right):
            client.close()


@pytest.fixture(scope="module")
def libcoap() -> str:
    binary = shutil.which("coap-client-notls")
    if binary is None:
        missing("coap-client-notls is needed for interoperability (Debian: apt-get install libcoap3-bin)")
    return binary


def test_http_and_coap_serve_the_same_spaces(tmp_path: Path, libcoap: str) -> None:
    with serving([*SERVE, "--memory", "--coap", "127.0.0.1:0", "--coap-space", "jobs"], tmp_path) as process:
        base = process.wait_for(r"node (coap://\S+) serving CoAP").group(1)
        with (
            httpx.Client(base_url=process.url(), timeout=PATIENCE) as http,
            ts.connect(base + "spaces/jobs", timeout=PATIENCE) as jobs,
        ):
            assert http.post("/spaces/jobs/write", json={"tuple": ["http", 1]}).status_code == 200
            assert jobs.take(("http", int), timeout=0) == ("http", 1)
            jobs.write(("coap", 2))
            template = ["coap", {"$formal": "int"}]
            taken = http.post("/spaces/jobs/take", json={"template": template, "timeout": 0})
            assert taken.json()["tuple"] == ["coap", 2]
            # a space made over HTTP is served over CoAP too, its records named by the node
            kitchen = {"path": "kitchen", "fields": {"temp": {"$float": "21.5"}}}
            made = http.post("/spaces/home/records/create", json=kitchen)
            assert made.status_code == 201, made.text
            address = made.json()["record"]["address"]["$uri"]
            assert address == base + "spaces/home/kitchen"
            got = subprocess.run(
                [libcoap, "-m", "get", "-A", "50", address + "/temp"],
                capture_output=True,
                timeout=PATIENCE,
                check=True,
            )
            assert got.stdout == b'{"$float":"21.5"}\n'
            with ts.connect(base + "spaces/home", timeout=PATIENCE) as home:
                home.write(("from", "coap"))
                counted = http.post("/spaces/home/count", json={"template": ["from", "coap"]})
                assert counted.json()["count"] == 1
                assert http.delete("/spaces/home").status_code == 204  # served no more, either way
                with pytest.raises(ts.NotFound, match="no space 'home'"):
                    home.count(("from", "coap"))
        assert process.stop(signal.SIGTERM) == 0


def test_served_spaces_kept_in_the_data_dir_outlive_a_restart(tmp_path: Path, libcoap: str) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    with serving([*SERVE, *data, "--coap", "127.0.0.1:0", "--coap-space", "jobs"], tmp_path) as process:
        base = process.wait_for(r"node (coap://\S+) serving CoAP").group(1)
        with httpx.Client(base_url=process.url(), timeout=PATIENCE) as http:
            kitchen = {"path": "kitchen", "fields": {"temp": {"$float": "21.5"}}}
            assert http.post("/spaces/home/records/create", json=kitchen).status_code == 201
        with ts.connect(base + "spaces/jobs", timeout=PATIENCE) as jobs:
            jobs.write(("job", 1))
        assert process.stop(signal.SIGTERM) == 0
    coap = ["--coap", base.removeprefix("coap://").rstrip("/")]  # the same address: the same names
    with serving([*SERVE, *data, *coap], tmp_path) as process:
        assert process.wait_for(r"node (coap://\S+) serving CoAP").group(1) == base
        process.url()
        with ts.connect(base + "spaces/jobs", timeout=PATIENCE) as jobs:
            assert jobs.take(("job", int), timeout=0) == ("job", 1)
        got = subprocess.run(
            [libcoap, "-m", "get", "-A", "50", base + "spaces/home/kitchen/temp"],
            capture_output=True,
            timeout=PATIENCE,
            check=True,
        )
        assert got.stdout == b'{"$float":"21.5"}\n'
        assert process.stop(signal.SIGTERM) == 0


def test_a_served_space_on_a_simulated_clock_is_moved_over_coap(tmp_path: Path, libcoap: str) -> None:
    with serving([*SERVE, "--memory", "--coap", "127.0.0.1:0"], tmp_path) as process:
        base = process.wait_for(r"node (coap://\S+) serving CoAP").group(1)
        with httpx.Client(base_url=process.url(), timeout=PATIENCE) as http:
            assert http.put("/spaces/sim", json={"clock": "simulated"}).status_code == 201
            start = http.get("/spaces/sim/clock").json()["now"]
            with ts.connect(base + "spaces/sim", timeout=PATIENCE) as sim:
                sim.write(("job", 1), lease=10)
                sim.clock.advance(11)  # no real time passes: the lease ran out on the space's clock
                assert sim.count(("job", int)) == 0
            assert http.get("/spaces/sim/clock").json() == {"now": start + 11, "simulated": True}
            got = subprocess.run(
                [libcoap, "-m", "get", "-A", "50", base + "spaces/sim?clock"],
                capture_output=True,
                timeout=PATIENCE,
                check=True,
            )
            assert ts.decode(got.stdout[:-1]) == {"now": start + 11, "simulated": True}
        assert process.stop(signal.SIGTERM) == 0
