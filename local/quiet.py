"""Keep library chatter out of what `merge`, `export`, `generate` and the demo print.

transformers' weight-loading progress bars and deprecation notices, and bitsandbytes' notice about
an optional CPU kernel package, say nothing a unitune user can act on. The training worker does
not use this: its `worker.log` keeps everything for debugging.
"""
from __future__ import annotations

import logging
import os
import warnings


def quiet_libraries() -> None:
    """Call before transformers/peft are imported (the environment switches are read at import)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers(\.|$)")
