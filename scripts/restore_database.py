"""Restore into a NEW server, to the latest point or `--to <time>`: `swordfish backup restore` (thin)."""

import sys

from devstack.cli import main  # finds a running `make serve`, like the swordfish command

if __name__ == "__main__":
    sys.exit(main(["backup", "restore", *sys.argv[1:]]))
