"""Vendor backends: one module per provider (openai.py with Azure, bedrock.py, vertex.py)."""
