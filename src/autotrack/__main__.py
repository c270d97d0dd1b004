"""``python -m autotrack``: the same as the ``autotrack`` command (useful without the script on PATH)."""

import sys

from autotrack.cli import main

if __name__ == "__main__":
    sys.exit(main())
