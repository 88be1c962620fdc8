"""Both Vertex clients (google-genai and GAPIC aiplatform_v1) pass the shared conformance suite
against the REST fake and the GCS emulator."""
from __future__ import annotations

from tests.conformance.suite import BackendConformance


class TestVertexConformance(BackendConformance):
    """Parametrized over the client by the `kind` fixture (conftest.py)."""
