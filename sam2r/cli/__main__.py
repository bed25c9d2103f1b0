"""`python -m sam2r.cli ...`: the `sam2r` command (how `torchrun -m sam2r.cli` starts it)."""

import sys

from sam2r.cli.main import main

sys.exit(main())
