"""``python -m openrs.gpu_check``."""

import sys

from openrs.gpu_check.cli import main

sys.exit(main())
