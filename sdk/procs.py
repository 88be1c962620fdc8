"""Process liveness, for the checks that find a process by pid (POSIX).

The local backend asks whether a job's worker still runs; the job registry asks whether the
process holding a submit lease does. Both mean the same thing by it: the pid exists (signal 0
reaches it, or it belongs to another user) and, where /proc tells, it is not a zombie or dead
task that only waits to be reaped.
"""
from __future__ import annotations

import os


def pid_running(pid: int) -> bool:
    """Whether process `pid` exists and has not exited (a zombie has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user's process
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc here (macOS), or it went away mid-read: signal 0 reached it
    return state not in (b"Z", b"X")
