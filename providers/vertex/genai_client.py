"""The default client: google-genai's `client.tunings` against Vertex AI (REST over httpx).

`create` builds `tunings.tune(...)` from the translated REST body and nothing else: each body
field has one `CreateTuningJobConfig` field (table below), and a body field without one is an
error, so google-genai sends exactly the body `plan` shows. Traps handled here: project and
location are ALWAYS passed (google-genai given a `base_url` without them drops both and posts to
`/`); the API version is pinned; retries are off (`HttpRetryOptions(attempts=1)`): the core
retries, and looks a job up by its label before any re-create.
"""
from __future__ import annotations

import warnings
from typing import Any, Iterator

from unitune.errors import InvalidRequest

from .connection import Conn
from .jobview import JobView, as_int
from .vendor_errors import translate

# REST body path → (tune() argument or CreateTuningJobConfig field, how the value is wrapped)
ARGS = {"baseModel": "base_model", "supervisedTuningSpec.trainingDatasetUri": "training_dataset"}
CONFIG = {
    "tunedModelDisplayName": "tuned_model_display_name",
    "description": "description",
    "labels": "labels",
    "supervisedTuningSpec.validationDatasetUri": "validation_dataset",
    "supervisedTuningSpec.exportLastCheckpointOnly": "export_last_checkpoint_only",
    "supervisedTuningSpec.hyperParameters.epochCount": "epoch_count",
    "supervisedTuningSpec.hyperParameters.learningRateMultiplier": "learning_rate_multiplier",
    "supervisedTuningSpec.hyperParameters.adapterSize": "adapter_size",
}


def leaves(body: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every field; a field the tables name is a leaf (labels)."""
    for key, value in body.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path not in CONFIG:
            yield from leaves(value, path + ".")
        else:
            yield path, value


def tune_arguments(body: dict[str, Any], types: Any) -> dict[str, Any]:
    """`tunings.tune` keyword arguments that make google-genai send `body`."""
    args: dict[str, Any] = {}
    config: dict[str, Any] = {}
    for path, value in leaves(body):
        if path in ARGS:
            args[ARGS[path]] = value
        elif path in CONFIG:
            config[CONFIG[path]] = value
        else:
            raise InvalidRequest(f"google-genai has no tune() field for {path}", backend="vertex",
                                 hint="use backend_options.vertex.client: aiplatform, or drop it")
    args["training_dataset"] = types.TuningDataset(gcs_uri=args.get("training_dataset"))
    if "validation_dataset" in config:
        config["validation_dataset"] = types.TuningValidationDataset(
            gcs_uri=config["validation_dataset"])
    if "adapter_size" in config:
        config["adapter_size"] = types.AdapterSize(config["adapter_size"])
    args["config"] = types.CreateTuningJobConfig(**config)
    return args


class GenaiTuningClient:
    kind = "genai"

    def __init__(self, conn: Conn, credentials) -> None:
        from unitune.backends import import_sdk

        genai = import_sdk("google.genai", "vertex")
        self.types = types = import_sdk("google.genai.types", "vertex")
        base_url = conn.endpoint.rstrip("/") + "/" if conn.endpoint else None
        http_options = types.HttpOptions(api_version=conn.api_version, base_url=base_url,
                                         timeout=60_000,
                                         retry_options=types.HttpRetryOptions(attempts=1))
        with translate("client setup"):
            self.client = genai.Client(vertexai=True, project=conn.project,
                                       location=conn.location, credentials=credentials,
                                       http_options=http_options)

    def create(self, body: dict[str, Any]) -> JobView:
        args = tune_arguments(body, self.types)
        with translate("create tuning job"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tune() is marked experimental
            return to_view(self.client.tunings.tune(**args))

    def get(self, name: str) -> JobView:
        with translate("get tuning job"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an unknown JobState warns before it is kept as-is
            return to_view(self.client.tunings.get(name=name))

    def list_labelled(self, key: str, value: str) -> list[JobView]:
        with translate("list tuning jobs"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pager = self.client.tunings.list(config={"filter": f'labels.{key}="{value}"',
                                                     "page_size": 50})
            return [to_view(job) for job in pager]

    def cancel(self, name: str) -> None:
        with translate("cancel tuning job"):
            self.client.tunings.cancel(name=name)


def to_view(job) -> JobView:
    state = job.state.value if job.state is not None and hasattr(job.state, "value") else job.state
    sts = job.supervised_tuning_spec
    hp = sts.hyper_parameters if sts else None
    stats = job.tuning_data_stats.supervised_tuning_data_stats if job.tuning_data_stats else None
    tm, err = job.tuned_model, job.error
    return JobView(
        name=job.name or "",
        state=str(state) if state is not None else None,
        labels=dict(job.labels or {}),
        base_model=job.base_model,
        display_name=job.tuned_model_display_name,
        create_time=job.create_time, start_time=job.start_time, end_time=job.end_time,
        error_message=(err.message or None) if err else None,
        error_code=as_int(err.code) if err else None,
        tuned_model=tm.model if tm else None,
        endpoint=tm.endpoint if tm else None,
        checkpoints=[c.endpoint or c.checkpoint_id for c in (tm.checkpoints or [])
                     if c.endpoint or c.checkpoint_id] if tm else [],
        example_count=as_int(stats.tuning_dataset_example_count) if stats else None,
        billable_tokens=as_int(stats.total_billable_token_count) if stats else None,
        step_count=as_int(stats.tuning_step_count) if stats else None,
        truncated_examples=as_int(stats.total_truncated_example_count) if stats else None,
        dropped_reasons=list(stats.dropped_example_reasons or []) if stats else [],
        completed_steps=as_int(job.tuning_job_metadata.completed_step_count)
        if job.tuning_job_metadata else None,
        epoch_count=as_int(hp.epoch_count) if hp else None,
        adapter_size=(hp.adapter_size.value if hp and hp.adapter_size is not None
                      and hasattr(hp.adapter_size, "value") else None),
        gcs_metrics_uri=job.gcs_metrics_uri,
        experiment=job.experiment,
        raw=job.model_dump(mode="json", exclude_none=True, exclude={"sdk_http_response"}),
    )
