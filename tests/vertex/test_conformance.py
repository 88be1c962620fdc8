"""Both Vertex clients (google-genai and GAPIC aiplatform_v1) pass the shared provider conformance
suite against the REST fake and the GCS emulator."""
from __future__ import annotations

from tests.conformance.suite import ProviderConformance


class TestVertexConformance(ProviderConformance):
    """Parametrized over the client by the `kind` fixture; `harness` comes from conftest.py."""
