"""``python -m explore.cli ...`` runs the ``xpusim`` command line."""

import sys

from explore.cli import main

sys.exit(main())
