"""AWS Bedrock model customization (Nova, Llama, Claude 3 Haiku, legacy Titan/Cohere) via boto3.

`BedrockProvider` is the Provider protocol for Bedrock: the translation table (`translate.py`:
spec → the `create_model_customization_job` keyword arguments and the plan rows explaining
them, with the model family's hyperparameters in `hyper.py` and data rules in `rules.py`) plus
a thin boto3 adapter (`provider.py`, `aws.py`, `s3.py`, `status.py`, `metrics.py`,
`deploy.py`). The core prepares the data, merges the options, maps problems and retries.
boto3 is imported only inside methods, so importing this package stays light.
"""
from __future__ import annotations

from .options import BedrockOptions
from .provider import BedrockProvider

__all__ = ["BedrockOptions", "BedrockProvider"]
