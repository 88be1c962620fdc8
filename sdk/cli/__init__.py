"""unitune's command line (typer); see app.py."""
