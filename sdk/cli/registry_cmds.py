"""`unitune registry check | recover`: find and repair a registry that is corrupt or lost rows."""
from __future__ import annotations

import typer

from .common import EXIT_FAIL, console, handle_errors, print_json


def register(app: typer.Typer) -> None:
    reg_app = typer.Typer(help="Check or repair the local job registry.", no_args_is_help=True,
                          rich_markup_mode=None)
    app.add_typer(reg_app, name="registry")

    @reg_app.command("check")
    @handle_errors
    def check(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Integrity of the registry file, jobs whose rows were lost, jobs not yet confirmed by
        their vendor. Exit 1 when something needs `unitune registry recover`."""
        from ..recovery import check as run_check
        from ..registry import Registry

        result = run_check(Registry())
        if as_json:
            print_json(result.to_dict())
        else:
            out = console()
            out.print(f"registry {result.path}: integrity {result.integrity}", markup=False)
            out.print(f"lost rows (folders without a row): {', '.join(result.lost) or 'none'}",
                      markup=False)
            out.print(f"not yet confirmed by their vendor: {', '.join(result.unconfirmed) or 'none'}",
                      markup=False)
            if result.missing_folders:
                out.print(f"rows whose folder is gone: {', '.join(result.missing_folders)}",
                          markup=False)
            if not result.ok:
                out.print("run `unitune registry recover` to repair it", markup=False)
        if not result.ok:
            raise typer.Exit(EXIT_FAIL)

    @reg_app.command("recover")
    @handle_errors
    def recover(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Keep a corrupt registry file aside and make a new one, rebuild lost rows from the job
        folders, and ask each vendor (by idempotency key) about every unconfirmed job."""
        from ..client import Client
        from ..paths import unitune_home
        from ..recovery import open_or_replace
        from ..recovery import recover as run_recover

        registry, moved = open_or_replace(unitune_home() / "registry.sqlite3")
        err = console(stderr=True)
        result = run_recover(Client(registry, log=lambda m: err.print(m, markup=False)), moved)
        if as_json:
            print_json(result.to_dict())
            return
        out = console()
        if result.moved_aside:
            out.print(f"the corrupt registry was kept as {result.moved_aside}", markup=False)
        out.print(f"rebuilt {len(result.rebuilt)} row(s); re-attached {len(result.reattached)} "
                  f"job(s) the vendors still have; {len(result.never_submitted)} never reached "
                  "a vendor (marked cancelled)", markup=False)
        for job_id, why in result.unreachable.items():
            out.print(f"  {job_id}: could not ask the vendor: {why}", markup=False)
