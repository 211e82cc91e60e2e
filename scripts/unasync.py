"""Make the sync twin of the Python binding from its async source.

The binding's I/O code is written once, for asyncio, in ``src/tuplespace/client/_async*.py``
(a Redis space's in ``src/tuplespace/stores/_redis_async.py``); each sync twin is made from
it, line by line, by renaming tokens (as httpcore's ``scripts/unasync.py`` does):
``async def`` becomes ``def``, ``await`` goes, ``AsyncClient`` becomes ``Client``,
``__aenter__`` becomes ``__enter__``...  The result is then sorted and formatted by ruff,
as the rest of the code is.

    python scripts/unasync.py            # write the sync twins
    python scripts/unasync.py --check    # fail if a twin is not what it should be
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

CLIENT = Path(__file__).resolve().parent.parent / "src" / "tuplespace" / "client"
STORES = CLIENT.parent / "stores"
PAIRS = [
    (CLIENT / "_async.py", CLIENT / "_sync.py"),
    (CLIENT / "_async_subscription.py", CLIENT / "_sync_subscription.py"),
    (CLIENT / "_async_server.py", CLIENT / "_sync_server.py"),
    (CLIENT / "_async_transport.py", CLIENT / "_sync_transport.py"),
    (STORES / "_redis_async.py", STORES / "_redis_sync.py"),
    (STORES / "_redis_rules_async.py", STORES / "_redis_rules_sync.py"),
]

# Whole tokens only: a rule never matches inside a longer name.  ``(^|\b)`` is the
# first group of every pattern, so the name that follows ``Async`` is the second.
SUBS = [
    ("AsyncIterator", "Iterator"),
    ("Async([A-Z][A-Za-z0-9_]*)", r"\2"),
    ("async def", "def"),
    ("async with", "with"),
    ("async for", "for"),
    ("await ", ""),
    ("__aenter__", "__enter__"),
    ("__aexit__", "__exit__"),
    ("__aiter__", "__iter__"),
    ("__anext__", "__next__"),
    ("StopAsyncIteration", "StopIteration"),
    ("aclose", "close"),
    ("aiter_lines", "iter_lines"),
    ("aread", "read"),
    ("opened_later", "opened_now"),
    ("connect_async", "connect"),
    ("_async_subscription", "_sync_subscription"),
    ("_async_server", "_sync_server"),
    ("_async_transport", "_sync_transport"),
    ("_async", "_sync"),
    ("_redis_async", "_redis_sync"),
    ("_redis_rules_async", "_redis_rules_sync"),
    (r"redis\.asyncio", "redis"),
]
COMPILED = [(re.compile(r"(^|\b)" + pattern + r"($|\b)"), replacement) for pattern, replacement in SUBS]


def unasync_line(line: str) -> str:
    for pattern, replacement in COMPILED:
        line = pattern.sub(replacement, line)
    return line


def unasync(source: str, name: str = "_async.py") -> str:
    """The sync twin of the async module ``source`` (the file ``name``), its imports
    sorted and formatted by ruff (renaming ``AsyncLease`` to ``Lease`` moves it in its
    import list)."""
    header = f"# Made from {name} by scripts/unasync.py: edit {name}, then run the script.\n"
    text = header + "".join(unasync_line(line) for line in source.splitlines(keepends=True))
    text = _ruff(["check", "--fix", "--select", "I", "--exit-zero", "--quiet"], text)
    return _ruff(["format", "--quiet"], text)


def _ruff(arguments: list[str], text: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *arguments, "--stdin-filename", str(PAIRS[0][1]), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def made(source: Path) -> str:
    """What the sync twin of ``source`` must hold."""
    return unasync(source.read_text(encoding="utf-8"), source.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only check that the sync twins are up to date")
    args = parser.parse_args(argv)
    stale = []
    for source, target in PAIRS:
        expected = made(source)
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != expected:
                stale.append(target)
        else:
            target.write_text(expected, encoding="utf-8")
    for target in stale:
        print(f"{target} is not what {Path(__file__).name} makes: run it", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
