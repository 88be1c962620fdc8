"""OpenAI and Azure OpenAI fine-tuning, through the official `openai` SDK.

Each provider is a translation table plus a thin adapter (see `unitune.provider`); the core
(`unitune.pipeline`) prepares the data (converted to OpenAI chat or DPO JSONL), uploads it once
per content (`still_there` lets the upload cache reuse a file id), retries, and creates the job
exactly once: `create` makes ONE `jobs.create` with the SDK's retries off, carrying unitune's job
id and idempotency key in `metadata`, and `lookup` finds it again with `jobs.list(metadata=...)`.

    options.py      OpenAIOptions / AzureOptions: every option, typed (secrets are SecretStr)
    connection.py   per flavour: Location, credentials, the SDK client, vendor-only body fields
    checks.py       refusals, settings not applied, ranges, lifecycle dates (Problems)
    translate.py    THE table: spec → fine_tuning.jobs.create body + plan rows; capabilities
    jobs.py         the SDK adapter: upload, create, lookup, read, events, metrics, checkpoints
    errors.py       SDK exceptions → unitune errors (retryable truthful, secrets redacted)
    status.py       the status strings both APIs send → JobStatus (unknown → UNKNOWN)
    metrics.py      metrics events and the result CSV (column aliases, base64)
    deploy.py       Azure deployments through Azure Resource Manager, hourly cost first
    provider.py     OpenAIProvider, AzureOpenAIProvider
"""
from __future__ import annotations

from .checks import NOT_APPLIED_ADAPTERS, NOT_APPLIED_HP, REFUSED_ADAPTERS
from .connection import (DEFAULT_AZURE_API_VERSION, OPENAI_DEFAULT_URL, location_of,
                         remote_ref)
from .deploy import hosting_cost
from .metrics import CSV_ALIASES, decode_result_file, metrics_from_event_data, parse_result_csv
from .naming import META_JOB, META_KEY, META_SPEC
from .options import AzureOptions, OpenAIOptions
from .provider import AzureOpenAIProvider, OpenAIProvider
from .status import STATUS_MAP

__all__ = ["OpenAIProvider", "AzureOpenAIProvider", "OpenAIOptions", "AzureOptions",
           "STATUS_MAP", "parse_result_csv", "decode_result_file", "metrics_from_event_data",
           "CSV_ALIASES", "META_JOB", "META_KEY", "META_SPEC", "DEFAULT_AZURE_API_VERSION",
           "OPENAI_DEFAULT_URL", "REFUSED_ADAPTERS", "NOT_APPLIED_ADAPTERS", "NOT_APPLIED_HP",
           "hosting_cost", "location_of", "remote_ref"]
