"""Whether a process still runs: `/health` asks it of the first-run training job, and the job of the one
whose lock it takes over."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True while a process with this id exists (also one of another user, which we may not signal)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
