"""The tiny-model fixtures of the local backend tests (one model built per session)."""
from tests.local.conftest import tiny_home, tiny_model_dir  # noqa: F401
