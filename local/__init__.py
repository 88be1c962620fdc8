"""Local trainer: TRL/PEFT recipes run as a watchable worker process, the tiny offline model,
merge, export and generate."""
