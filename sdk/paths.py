"""Where unitune keeps its state: `UNITUNE_HOME` or the platform's user data directory."""
from __future__ import annotations

import os
from pathlib import Path


def unitune_home() -> Path:
    """The root of unitune's state (registry, local jobs, cached tiny model); created on demand."""
    env = os.environ.get("UNITUNE_HOME")
    if env:
        home = Path(env).expanduser()
    else:
        import platformdirs

        home = Path(platformdirs.user_data_dir("unitune", appauthor=False))
    home.mkdir(parents=True, exist_ok=True)
    return home
