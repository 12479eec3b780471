"""Take an encrypted base backup now: `swordfish backup create` (thin, for cron or an operator)."""

import sys

from swordfish.cli import main

if __name__ == "__main__":
    sys.exit(main(["backup", "create", *sys.argv[1:]]))
