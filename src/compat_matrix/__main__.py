"""`python -m compat_matrix`."""

from __future__ import annotations

import sys

from compat_matrix.front.cli import main

sys.exit(main())
