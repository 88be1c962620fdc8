"""Fakes users can use in their own tests: an in-memory backend and emulated vendor servers."""
