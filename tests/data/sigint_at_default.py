"""`python -m compat_matrix ARGS...` with SIGINT at its default, as a command typed at a
terminal has it (a background job of a script inherits SIGINT ignored); the same process."""

import os
import signal
import sys

signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.executable, [sys.executable, "-m", "compat_matrix", *sys.argv[1:]])  # noqa: S606
