"""``python -m tuplespace``: the ``tuplespace`` command."""

import sys

from ._extras import MissingExtra


def main() -> None:
    """The entry point of the ``tuplespace`` command (:mod:`tuplespace.cli`): without the
    extra a part of it needs, one line on stderr that names the extra, and status 1."""
    try:
        from .cli import main as run

        run()
    except MissingExtra as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    main()
