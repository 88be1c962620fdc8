"""`python -m unitune` runs the CLI."""
from .cli.app import main

main()
