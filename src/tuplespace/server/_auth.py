"""Bearer tokens and the permissions they grant.

A token grants, per space (or ``*`` for every space), a set of permissions
(:data:`PERMISSIONS`); a token with ``admin: true`` may do everything, the token
API included.  Tokens are kept by the SHA-256 digest of their secret, so looking
one up takes the same time whatever the guess.  Tokens come from a JSON file (and
changes made through the API are written back to it, atomically) or a dict::

    {"tokens": [
      {"name": "worker-1", "token": "…", "spaces": {"jobs": ["read", "take"], "*": ["read"]}},
      {"name": "ops", "token_sha256": "<hex digest>", "admin": true}
    ]}

A server given no tokens at all does not check them: every request may do
everything (it listens on 127.0.0.1 unless told otherwise).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .._errors import Conflict, NotFound, Unauthorized
from .._httpapi import PERMISSIONS
from ._errors import coded

__all__ = [
    "ALL",
    "PERMISSIONS",
    "Grant",
    "Tokens",
    "check_permissions",
    "permissions_for",
    "valid_space_name",
]

ALL = frozenset(PERMISSIONS)
MIN_TOKEN_LENGTH = 16
_SPACE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def valid_space_name(name: str) -> bool:
    """A space name: 1 to 128 letters, digits, ``.``, ``_`` or ``-``, starting with a
    letter or digit."""
    return _SPACE_NAME.fullmatch(name) is not None


def check_permissions(value: object, where: str) -> frozenset[str]:
    """The permissions listed in ``value`` (a JSON array); ValueError naming ``where``."""
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise ValueError(f"{where} is a list of permissions ({', '.join(PERMISSIONS)})")
    unknown = sorted(set(value) - ALL)
    if unknown:
        raise ValueError(
            f"{where}: unknown permission {unknown[0]!r}; permissions are {', '.join(PERMISSIONS)}"
        )
    return frozenset(value)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


@dataclass(eq=False)
class Grant:
    """What one token may do."""

    name: str
    digest: bytes
    spaces: dict[str, frozenset[str]] = field(default_factory=dict)
    admin: bool = False
    secret: str | None = None  # kept only when the token file holds the secret itself
    revoked: bool = False  # set once revoked: work under way with it ends

    def permissions(self, space: str) -> frozenset[str]:
        if self.admin:
            return ALL
        return self.spaces.get(space, frozenset()) | self.spaces.get("*", frozenset())

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "admin": self.admin,
            "spaces": {k: sorted(v) for k, v in self.spaces.items()},
        }

    def to_file(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name}
        if self.secret is not None:
            entry["token"] = self.secret
        else:
            entry["token_sha256"] = self.digest.hex()
        if self.spaces:
            entry["spaces"] = {k: sorted(v) for k, v in self.spaces.items()}
        if self.admin:
            entry["admin"] = True
        return entry


def parse_grant(entry: object, where: str) -> Grant:
    """A :class:`Grant` from one entry of a token file or of a token API request."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where} is a JSON object")
    unknown = sorted(set(entry) - {"name", "token", "token_sha256", "spaces", "admin"})
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}")
    name = entry.get("name")
    if not isinstance(name, str) or not 0 < len(name) <= 128:
        raise ValueError(f"{where}.name is a string of 1 to 128 characters")
    token, hexdigest = entry.get("token"), entry.get("token_sha256")
    if (token is None) == (hexdigest is None):
        raise ValueError(f"{where} has either token or token_sha256")
    if token is not None:
        if not isinstance(token, str) or len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"{where}.token is a string of at least {MIN_TOKEN_LENGTH} characters")
        digest = _digest(token)
    else:
        if not isinstance(hexdigest, str) or not re.fullmatch(r"[0-9a-f]{64}", hexdigest):
            raise ValueError(f"{where}.token_sha256 is 64 lowercase hex digits")
        digest = bytes.fromhex(hexdigest)
    spaces_in = entry.get("spaces", {})
    if not isinstance(spaces_in, dict):
        raise ValueError(f"{where}.spaces is an object from space names (or *) to permissions")
    spaces: dict[str, frozenset[str]] = {}
    for space, perms in spaces_in.items():
        if space != "*" and not valid_space_name(space):
            raise ValueError(f"{where}.spaces: {space!r} is not a space name")
        spaces[space] = check_permissions(perms, f"{where}.spaces[{space!r}]")
    admin = entry.get("admin", False)
    if not isinstance(admin, bool):
        raise ValueError(f"{where}.admin is true or false")
    return Grant(name, digest, spaces, admin, token)


class Tokens:
    """The tokens a server accepts; changes take effect at once for every request."""

    def __init__(self, source: str | os.PathLike[str] | Mapping[str, Any] | None) -> None:
        self.enabled = source is not None
        self.path: Path | None = None
        self._by_digest: dict[bytes, Grant] = {}
        self._by_name: dict[str, Grant] = {}
        self._lock = threading.Lock()
        if source is None:
            return
        if isinstance(source, Mapping):
            data: object = dict(source)
        else:
            self.path = Path(source)
            try:
                data = orjson.loads(self.path.read_bytes())
            except OSError as exc:
                raise ValueError(f"cannot read the token file {self.path}: {exc.strerror}") from None
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"the token file {self.path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), list) or set(data) != {"tokens"}:
            raise ValueError('tokens are given as {"tokens": [{"name", "token", "spaces", "admin"}, ...]}')
        for i, entry in enumerate(data["tokens"]):
            self._add(parse_grant(entry, f"tokens[{i}]"))

    def _add(self, grant: Grant) -> None:
        if grant.name in self._by_name:
            raise ValueError(f"two tokens are named {grant.name!r}")
        if grant.digest in self._by_digest:
            raise ValueError(f"the token named {grant.name!r} is the same as another")
        self._by_name[grant.name] = grant
        self._by_digest[grant.digest] = grant

    def authenticate(self, authorization: str | None) -> Grant | None:
        """The grant of the request's ``Authorization`` header; None without one (or
        when no tokens are checked).

        Raises :class:`~tuplespace.Unauthorized` for a malformed header or an unknown token.
        """
        if authorization is None or not self.enabled:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header is 'Bearer <token>'")
        grant = self._by_digest.get(_digest(token.strip()))
        if grant is None:
            raise Unauthorized("unknown or revoked token")
        return grant

    def grants(self) -> list[Grant]:
        return sorted(self._by_name.values(), key=lambda g: g.name)

    def create(self, entry: dict[str, Any]) -> tuple[Grant, str]:
        """Add a token from a token API request; returns it and its secret."""
        given = dict(entry)
        secret = given.pop("token", None)
        if secret is None:
            secret = secrets.token_urlsafe(32)
        given["token"] = secret
        grant = parse_grant(given, "body")
        grant.secret = None  # the file keeps only the digest of tokens made by the API
        with self._lock:
            if grant.name in self._by_name:
                raise coded(Conflict(f"a token named {grant.name!r} exists"), "token_exists", "name")
            if grant.digest in self._by_digest:
                raise coded(Conflict("this token is already in use"), "token_exists", "token")
            self._add(grant)
            try:
                self._save()
            except BaseException:
                del self._by_name[grant.name]
                del self._by_digest[grant.digest]
                raise
        return grant, secret

    def revoke(self, name: str) -> Grant:
        """Revoke the token ``name`` (404 if there is none); returns its grant, now
        marked ``revoked``."""
        with self._lock:
            grant = self._by_name.get(name)
            if grant is None:
                raise NotFound(f"no token is named {name!r}")
            del self._by_name[name]
            del self._by_digest[grant.digest]
            try:
                self._save()
            except BaseException:
                self._add(grant)
                raise
            grant.revoked = True
        return grant

    def _save(self) -> None:
        if self.path is None:
            return
        data = orjson.dumps({"tokens": [g.to_file() for g in self.grants()]}, option=orjson.OPT_INDENT_2)
        directory = self.path.parent
        fd, tmp = tempfile.mkstemp(prefix=".tokens-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data + b"\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def permissions_for(
    tokens: Tokens, grant: Grant | None, space: str, anonymous: Iterable[str]
) -> frozenset[str]:
    """What a request may do on ``space``: its token's permissions and the space's
    anonymous ones (everything when the server checks no tokens)."""
    if not tokens.enabled:
        return ALL
    anon = frozenset(anonymous)
    if grant is None:
        return anon
    return grant.permissions(space) | anon
