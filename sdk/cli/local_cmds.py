"""`unitune merge`, `unitune export`, `unitune generate`: what to do with a finished local job."""
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

    @app.command()
    @handle_errors
    def generate(job: str = typer.Argument(..., help="Local job id (or prefix) or job directory."),
                 prompt: str = typer.Argument(..., help="The user message."),
                 max_new_tokens: int = typer.Option(48, "--max-new-tokens", min=1, max=4096),
                 system: Optional[str] = typer.Option(None, "--system", help="A system message."),
                 json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Answer a prompt with the base model and the tuned model, side by side (greedy)."""
        from ..local.generate import generate as do_generate
        from ..local.merge import resolve_job_dir

        out = do_generate(resolve_job_dir(job), prompt, max_new_tokens=max_new_tokens, system=system)
        if json_out:
            print_json(out)
            return
        from rich.table import Table

        table = Table(show_lines=True)
        table.add_column("base")
        table.add_column("tuned")
        table.add_row(out["base"] or "(empty)", out["tuned"] or "(empty)")
        console().print(table)
