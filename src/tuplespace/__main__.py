"""``python -m tuplespace``: the ``tuplespace`` command."""

from .cli import main

if __name__ == "__main__":
    main()
