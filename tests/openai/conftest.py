"""Fixtures for tests/openai (defined in openai_helpers.py; this folder has no __init__.py so that
`import openai` keeps meaning the vendor SDK, not this test folder)."""
from openai_helpers import (azure_env, azure_provider, azure_server, openai_env,  # noqa: F401
                            openai_provider, server)
