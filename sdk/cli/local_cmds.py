"""`unitune merge`: fold a finished local job's adapter into its base model."""
from __future__ import annotations

from typing import Optional

import typer

from .common import console, handle_errors, print_json


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def merge(job: str = typer.Argument(..., help="Local job id (or prefix) or job directory."),
              output: Optional[str] = typer.Option(None, "-o", "--output",
                                                   help="Where to write the merged model "
                                                        "(default: JOB_DIR/merged). A non-empty "
                                                        "directory is refused."),
              force: bool = typer.Option(False, "--force", help="Replace an earlier merge in "
                                         "--output (only the files unitune wrote)."),
              json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Merge a local job's adapter onto its base (reloaded in full precision, never 4-bit)."""
        from pathlib import Path

        from ..local.merge import merge as do_merge, resolve_job_dir

        out = do_merge(resolve_job_dir(job), Path(output) if output else None, force=force)
        if json_out:
            print_json({"merged": str(out)})
        else:
            console().print(f"merged adapter onto a full-precision base: {out}")
