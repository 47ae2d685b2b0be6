"""``python -m gradproof …`` runs the command line, exactly as the ``gradproof`` script does."""

import sys

from .reports.cli import main

if __name__ == "__main__":
    sys.exit(main())
