"""``python -m harness.cli``: the command line."""

import sys

from harness.cli import main

sys.exit(main())
