"""``python -m postkit``: the same CLI as the ``postkit`` command, for environments where
the console script is not on PATH (a cluster job, a notebook's ``!python -m postkit``)."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="postkit")
