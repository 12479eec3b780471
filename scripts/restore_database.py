"""Restore into a NEW server, to the latest point or `--to <time>`: `swordfish backup restore` (thin)."""

import sys

from swordfish.cli import main

if __name__ == "__main__":
    sys.exit(main(["backup", "restore", *sys.argv[1:]]))
