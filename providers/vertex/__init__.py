"""Google Vertex AI backend: Gemini supervised tuning through google-genai (default) or the GAPIC
aiplatform_v1 client. Importing this package imports no Google SDK; the clients load lazily."""
from .provider import VertexProvider

__all__ = ["VertexProvider"]
