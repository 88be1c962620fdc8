"""Bedrock passes the shared conformance suite against moto's server through real boto3."""
from __future__ import annotations

import pytest

from tests.conformance.suite import BackendConformance

from .harness import MotoHarness


@pytest.fixture
def harness(aws):
    return MotoHarness(aws)


class TestBedrockConformance(BackendConformance):
    pass
