"""unitune: one job spec, any backend.

Fine-tune language models on OpenAI, Azure OpenAI, AWS Bedrock, Google Vertex AI or locally
(LoRA/QLoRA on TRL + PEFT) through one provider-neutral job model. Heavy modules (torch,
transformers, vendor SDKs) are imported lazily: `import unitune` stays light.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "JobSpec": "unitune.spec",
    "Job": "unitune.job",
    "JobStatus": "unitune.job",
    "Metrics": "unitune.job",
    "ModelHandle": "unitune.job",
    "Snapshot": "unitune.job",
    "Client": "unitune.client",
    "get_backend": "unitune.backends",
    "UnituneError": "unitune.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .backends import get_backend
    from .client import Client
    from .errors import UnituneError
    from .job import Job, JobStatus, Metrics, ModelHandle, Snapshot
    from .spec import JobSpec


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'unitune' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
