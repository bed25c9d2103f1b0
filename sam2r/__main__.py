"""`python -m sam2r ...`: the `sam2r` command (`sam2r.cli.main`)."""

import sys

from sam2r.cli.main import main

sys.exit(main())
