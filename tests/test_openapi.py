"""The OpenAPI document of a real server, read by the tools made for such documents.

A client generated from it by openapi-python-client has every operation, imports, and
writes and takes a tuple; schemathesis, generating requests the document allows, finds
none that the server refuses; every path answers a method it does not take with 405 and
an ``Allow`` naming the ones it takes.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import PATIENCE, missing
from tuplespace._httpapi import OPERATIONS
from tuplespace.server import Server, create_app

# openapi-python-client pins typer below the version the project's command line uses, so it
# lives in an environment of its own, made once beside the project's (under sys.prefix).
GENERATOR = "openapi-python-client==0.29.1"
ADMIN = "admin-secret-0123456789"
TOKENS = {"tokens": [{"name": "ops", "token": ADMIN, "admin": True}]}
METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")


@pytest.fixture(scope="module")
def generator() -> Path:
    """The ``openapi-python-client`` program, installed with pip if it is not yet."""
    home = Path(sys.prefix) / "tools" / GENERATOR.replace("==", "-")
    program = home / "bin" / "openapi-python-client"
    if not program.exists():
        try:
            venv.create(home, with_pip=True)
        except OSError as exc:
            missing(f"no environment for {GENERATOR} in {home}: {exc}")
        install = [str(home / "bin" / "python"), "-m", "pip", "install", "--quiet", GENERATOR]
        done = subprocess.run(install, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not program.exists():
            missing(f"pip could not install {GENERATOR}: {done.stderr.strip()[-2000:]}")
    return program


@pytest.fixture
def secured() -> Iterator[Server]:
    """A server that checks tokens, on a free port of 127.0.0.1."""
    server = Server(create_app(tokens=TOKENS, long_poll=1.0, claim_lease=1.0), port=0)
    thread = server.start_in_thread()
    try:
        yield server
    finally:
        server.stop()
        thread.join(PATIENCE)


def _document(server: Server) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/openapi.json", timeout=PATIENCE)
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]


def test_a_generated_client_has_every_operation_and_writes_and_takes_a_tuple(
    generator: Path, secured: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = _document(secured)
    source = tmp_path / "openapi.json"
    source.write_text(json.dumps(doc))
    package = tmp_path / "tuplespace_api"
    command = [str(generator), "generate", "--path", str(source), "--output-path", str(package)]
    env = {**os.environ, "PATH": f"{generator.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [*command, "--meta", "none"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "warning" not in output.lower(), output

    monkeypatch.syspath_prepend(str(tmp_path))
    api = importlib.import_module("tuplespace_api")
    names = [m.name for m in pkgutil.walk_packages(api.__path__, "tuplespace_api.")]
    modules = [importlib.import_module(name) for name in names]
    generated = [m for m in modules if m.__name__.startswith("tuplespace_api.api.") and hasattr(m, "sync")]
    assert len(generated) == len(_operations(doc))

    from tuplespace_api import AuthenticatedClient  # type: ignore[import-not-found]
    from tuplespace_api.api.default import put_space, take, write  # type: ignore[import-not-found]
    from tuplespace_api.models import (  # type: ignore[import-not-found]
        AnyField,
        Error,
        FloatValue,
        FormalField,
        FormalFieldFormal,
        TakeBody,
        TakeResponse200,
        WriteBody,
    )

    with AuthenticatedClient(base_url=secured.url, token=ADMIN) as ops:
        assert put_space.sync_detailed("jobs", client=ops).status_code == 201
        written = write.sync("jobs", client=ops, body=WriteBody(tuple_=["job", 7, FloatValue(float_="2.5")]))
        assert written.lease.expires_at is None
        template = ["job", AnyField(any_=True), FormalField(formal=FormalFieldFormal.FLOAT)]
        taken = take.sync("jobs", client=ops, body=TakeBody(template=template))
    assert isinstance(taken, TakeResponse200)
    assert taken.tuple_[:2] == ["job", 7]
    assert taken.tuple_[2].float_ == "2.5"
    # The token travels as the bearer scheme says: without the right one, nothing is written.
    with AuthenticatedClient(base_url=secured.url, token="not-a-token-0123456789") as stranger:
        refused = write.sync("jobs", client=stranger, body=WriteBody(tuple_=["job"]))
    assert isinstance(refused, Error)
    assert refused.error.code == "unauthorized"


def test_the_document_holds_each_operation_of_the_table_at_its_path_with_its_fields(secured: Server) -> None:
    doc = _document(secured)
    listed = {(path, method.upper(), op["operationId"]) for path, method, op in _operations(doc)}
    assert listed == {(op.path, op.method, op.name) for op in OPERATIONS}
    for op in OPERATIONS:
        described = doc["paths"][op.path][op.method.lower()]
        assert described["summary"] == op.summary
        assert set(described["responses"]) >= set(op.answers)
        body = described.get("requestBody", {}).get("content", {}).get("application/json", {})
        assert set(body.get("schema", {}).get("properties", ())) == op.fields, op.name
        assert tuple(body.get("schema", {}).get("required", ())) == op.required, op.name


def test_the_bearer_scheme_is_declared_on_the_operations_that_read_a_token(secured: Server) -> None:
    doc = _document(secured)
    assert doc["components"]["securitySchemes"]["bearer"]["type"] == "http"
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, method, op in _operations(doc):
        if op["operationId"] == "health":
            assert "security" not in op
        else:
            assert {"bearer": []} in op["security"], (method, path)
            assert {} in op["security"], (method, path)  # anonymous requests are answered too


def test_a_method_a_path_does_not_take_is_answered_405_with_the_methods_it_takes(secured: Server) -> None:
    doc = _document(secured)
    patterns = {path: re.compile(re.sub(r"\{[^}]+\}", "[^/]+", path) + "$") for path in doc["paths"]}
    with httpx.Client(base_url=secured.url, timeout=PATIENCE) as http:
        for path in doc["paths"]:
            concrete = re.sub(r"\{[^}]+\}", "a1", path)
            # Its methods, and those of the paths it is an instance of too (credit/{principal}).
            takes = sorted(
                {
                    method.upper()
                    for other, item in doc["paths"].items()
                    if patterns[other].match(concrete)
                    for method in item
                }
            )
            for method in METHODS:
                if method in takes:
                    continue
                response = http.request(method, concrete)
                assert response.status_code == 405, (method, path)
                assert response.headers["Allow"] == ", ".join(takes), (method, path)
                assert response.json()["error"]["code"] == "method_not_allowed"


def _as_written(obj: Any) -> Any:
    """``obj`` with the whole floats schemathesis sends for integers (``2.0``) as integers.

    JSON Schema cannot tell ``2.0`` from ``2``; the wire format can (``2.0`` is no value:
    floats are ``{"$float": "2"}``), and the document's integers mean integers as written."""
    if isinstance(obj, float) and obj.is_integer() and abs(obj) <= 2**53:
        return int(obj)
    if isinstance(obj, list):
        return [_as_written(item) for item in obj]
    if isinstance(obj, dict):
        return {key: item if key == "$float" else _as_written(item) for key, item in obj.items()}
    return obj


def test_schemathesis_finds_no_request_the_document_allows_and_the_server_refuses() -> None:
    import hypothesis
    import schemathesis
    from hypothesis import strategies as st
    from schemathesis.core.failures import FailureGroup
    from schemathesis.core.result import Ok
    from schemathesis.specs.openapi.checks import positive_data_acceptance
    from schemathesis.specs.openapi.formats import register_string_format, unregister_string_format

    # XPath 1.0 expressions (the format of "$xpath"), which schemathesis does not know.
    step = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True)
    register_string_format("xpath", st.lists(step, min_size=1, max_size=3).map(lambda s: "//" + "/".join(s)))
    # Expressions of rules (the format "cel"): CEL that reads no name, so valid in every rule.
    register_string_format("cel", st.sampled_from(["1", "'word'", "1 + 2", "true", "2.5 * 2.0", "[1, 'a']"]))
    server = Server(create_app(long_poll=0.01, claim_lease=0.05), port=0)  # no durable spaces
    thread = server.start_in_thread()
    try:
        doc = _document(server)
        schema = schemathesis.openapi.from_dict(doc)
        refused: list[str] = []
        with httpx.Client(base_url=server.url, timeout=PATIENCE) as http:
            for result in schema.get_all_operations():
                assert isinstance(result, Ok)
                operation = result.ok()
                if operation.path.endswith("/events"):
                    continue  # a stream that lasts

                @hypothesis.settings(
                    max_examples=20,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    suppress_health_check=list(hypothesis.HealthCheck),
                    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
                )
                @hypothesis.given(
                    case=operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE)
                )
                def check(case: schemathesis.Case[Any]) -> None:
                    # Requests on a space that exists, so that their bodies are read.
                    if "space" in case.path_parameters and case.operation.path != "/spaces/{space}":
                        case.path_parameters["space"] = "a"
                        http.put("/spaces/a")
                    case.body = _as_written(case.body)
                    response = case.call(base_url=server.url, timeout=PATIENCE)
                    if response.status_code == 402:
                        return  # understood, and refused for want of credit (a transfer from nothing)
                    if response.status_code == 413 and response.json()["error"]["limit"] == "max_rule_bytes":
                        return  # understood, and over a bound in bytes, which JSON Schema cannot state
                    try:  # refused as malformed: 400, 413, 415, 422...
                        case.validate_response(response, checks=[positive_data_acceptance])
                    except FailureGroup:
                        refused.append(
                            f"{case.as_curl_command()}\n  -> {response.status_code} {response.text}"
                        )

                check()
        assert not refused, "\n".join(refused)
    finally:
        unregister_string_format("xpath")
        unregister_string_format("cel")
        server.stop()
        thread.join(PATIENCE)


def test_the_stores_a_space_may_ask_for_are_those_of_the_server(secured: Server, tmp_path: Path) -> None:
    def stores(doc: dict[str, Any]) -> Any:
        body = doc["paths"]["/spaces/{space}"]["put"]["requestBody"]["content"]["application/json"]["schema"]
        return body["properties"]["store"]["enum"]

    assert stores(_document(secured)) == ["memory"]  # no data directory
    assert stores(create_app(tmp_path / "data").openapi()) == ["durable", "memory"]
