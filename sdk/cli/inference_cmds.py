"""`unitune generate`: call a tuned (or base) model."""
from __future__ import annotations

from typing import Optional

import typer

from .common import console, handle_errors, print_json


def register(app: typer.Typer) -> None:
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
