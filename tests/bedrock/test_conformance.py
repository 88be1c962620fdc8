"""Bedrock passes the shared provider conformance suite against moto's server through real
boto3 (the harness: tests/bedrock/harness.py)."""
from __future__ import annotations

import pytest

from tests.conformance.suite import ProviderConformance

from .harness import MotoHarness


@pytest.fixture
def harness(aws):
    return MotoHarness(aws)


class TestBedrockConformance(ProviderConformance):
    pass
