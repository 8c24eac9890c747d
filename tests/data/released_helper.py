"""A report's forked helper let go while it still runs: this process ends at once, as `report`
does, while the helper lingers (stopped here, so that it lingers for as long as the test looks
at it). Arguments: the report file to replace, the file that replaces it."""

import os
import signal
import sys

from compat_matrix.reports._parallel import Forked

report, replacement = sys.argv[1], sys.argv[2]
held = os.open(report, os.O_RDONLY)
helper = Forked(lambda: None, hold=[held])
assert helper.finished()
os.kill(helper.pid, signal.SIGSTOP)
os.replace(replacement, report)  # the old file is the helper's to free, when it exits
pid = helper.pid
helper.release()
print(pid, flush=True)
os._exit(0)
