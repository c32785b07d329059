"""``python -m scheduler``: the same as ``navarch scheduler`` (without the launcher's log set-up)."""

import sys

from scheduler.app import main

sys.exit(main(sys.argv[1:]))
