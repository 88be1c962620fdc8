"""AWS Bedrock model customization (Nova, Llama, Claude 3 Haiku, legacy Titan/Cohere) via boto3.

`BedrockBackend` converts the dataset to the base model's family format, checks it against that
family's rules, uploads it to S3 under a content-hash key, maps the unified hyperparameters to the
family's vendor keys and creates an idempotent `create_model_customization_job`. boto3 is imported
only inside methods, so importing this package stays light.
"""
from __future__ import annotations

from .backend import BedrockBackend

__all__ = ["BedrockBackend"]
