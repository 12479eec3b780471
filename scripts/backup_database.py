"""Take an encrypted base backup now: `swordfish backup create` (thin, for cron or an operator)."""

import sys

from devstack.cli import main  # finds a running `make serve`, like the swordfish command

if __name__ == "__main__":
    sys.exit(main(["backup", "create", *sys.argv[1:]]))
