"""OpenAI and Azure OpenAI fine-tuning backends, through the official `openai` SDK.

How a job goes: `check` refuses what OpenAI cannot run (and the model's lifecycle dates decide
whether new jobs are still accepted); `submit` converts the dataset to OpenAI chat (or DPO) JSONL,
uploads it once per content hash (`ctx.uploads`), waits until it is processed, and creates the job
with the SDK's retries OFF — the SDK retries POSTs without an idempotency key, so a lost response
would otherwise leave two billed jobs. Every create carries unitune's job id and idempotency key
in `metadata`; before any retry (and in `find`) the job is looked up with
`jobs.list(metadata=...)`, and it is created only when it is really absent.

`get` / `cancel` / `pause` / `resume` return normalized Snapshots (every documented status, the
Azure-only ones, and UNKNOWN with the raw string for anything else); `metrics` merges metrics
events (while running) with the result-file CSV (at the end); `events` returns the job's log.

The Azure backend (`AzureOpenAIBackend`) is the same with an `AzureOpenAI` client (key or
Microsoft Entra token), `trainingType` sent for supervised jobs, and `deploy` / `undeploy` of the
tuned model through the Azure Resource Manager REST API (httpx), printing the hourly hosting cost
from the price catalog before it creates anything.
"""
from __future__ import annotations

from .azure import DEFAULT_ARM_API_VERSION, DEFAULT_AZURE_API_VERSION, AzureOpenAIBackend
from .backend import OpenAIBackend
from .metrics import CSV_ALIASES, decode_result_file, metrics_from_event_data, parse_result_csv
from .naming import META_JOB, META_KEY, META_SPEC
from .plan import NOT_APPLIED_ADAPTERS, NOT_APPLIED_HP, REFUSED_ADAPTERS, UPLOAD_DEST
from .status import STATUS_MAP
from .vendor_errors import SECRET_PATTERNS, scrub

__all__ = ["OpenAIBackend", "AzureOpenAIBackend", "STATUS_MAP", "parse_result_csv",
           "decode_result_file", "metrics_from_event_data", "scrub", "CSV_ALIASES", "META_JOB",
           "META_KEY", "META_SPEC", "UPLOAD_DEST", "DEFAULT_AZURE_API_VERSION",
           "DEFAULT_ARM_API_VERSION", "REFUSED_ADAPTERS", "NOT_APPLIED_ADAPTERS", "NOT_APPLIED_HP",
           "SECRET_PATTERNS"]
