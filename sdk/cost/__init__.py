"""Cost estimation and cross-backend comparison, driven by the dated catalog."""
