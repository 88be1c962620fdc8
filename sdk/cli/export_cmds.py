"""`unitune export`: a finished job's model in the form other tools load."""
from __future__ import annotations

import typer

from .common import console, handle_errors, print_json


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def export(job: str = typer.Argument(..., help="Local job id (or prefix) or job directory."),
               dest: str = typer.Argument(..., help="New directory for the exported model."),
               json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Export a local job as a standalone model dir (safetensors, tokenizer, chat template)."""
        from pathlib import Path

        from ..local.merge import export as do_export, resolve_job_dir

        out = do_export(resolve_job_dir(job), Path(dest))
        if json_out:
            print_json({"exported": str(out)})
        else:
            console().print(f"exported to {out} (load with AutoModelForCausalLM.from_pretrained "
                            f"or `vllm serve {out}`)")
