"""`python -m worker` is the `escalator` command."""

import sys

from worker.cli import main

sys.exit(main())
