"""The default client: google-genai's `client.tunings` against Vertex AI (REST over httpx).

Traps handled here (see docs/backends/vertex.md): project and location are ALWAYS passed, since
google-genai given a `base_url` without them silently drops both and posts to `/`; the API
version is pinned to v1; retries stay off (google-genai's retry would re-send the create), so the
backend creates once and looks the job up by label before trying again.
"""
from __future__ import annotations

import warnings
from typing import Any, Iterator

from .jobview import CreateRequest, JobView, _int
from .settings import VertexSettings
from .vendor_errors import translate


class GenaiTuningClient:
    kind = "genai"

    def __init__(self, settings: VertexSettings, credentials) -> None:
        from unitune.backends import import_sdk

        genai = import_sdk("google.genai", "vertex")
        types = import_sdk("google.genai.types", "vertex")
        self.types = types
        base_url = (settings.endpoint.rstrip("/") + "/") if settings.endpoint else None
        http_options = types.HttpOptions(api_version=settings.api_version, base_url=base_url,
                                         timeout=60_000)
        with translate("client setup"):
            self.client = genai.Client(vertexai=True, project=settings.project,
                                       location=settings.location, credentials=credentials,
                                       http_options=http_options)

    def create(self, req: CreateRequest) -> JobView:
        t = self.types
        config: dict[str, Any] = {"labels": req.labels}
        if req.display_name:
            config["tuned_model_display_name"] = req.display_name
        if req.description:
            config["description"] = req.description
        if req.validation_uri:
            config["validation_dataset"] = t.TuningValidationDataset(gcs_uri=req.validation_uri)
        if req.epoch_count is not None:
            config["epoch_count"] = req.epoch_count
        if req.learning_rate_multiplier is not None:
            config["learning_rate_multiplier"] = req.learning_rate_multiplier
        if req.adapter_size:
            config["adapter_size"] = t.AdapterSize(req.adapter_size)
        with translate("create tuning job"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tune() is marked experimental
            job = self.client.tunings.tune(base_model=req.base_model,
                                           training_dataset=t.TuningDataset(gcs_uri=req.training_uri),
                                           config=t.CreateTuningJobConfig(**config))
        return to_view(job)

    def get(self, name: str) -> JobView:
        with translate("get tuning job"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an unknown JobState warns before it is kept as-is
            return to_view(self.client.tunings.get(name=name))

    def list_labelled(self, key: str, value: str) -> Iterator[JobView]:
        with translate("list tuning jobs"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pager = self.client.tunings.list(config={"filter": f'labels.{key}="{value}"',
                                                     "page_size": 50})
            for job in pager:
                yield to_view(job)

    def cancel(self, name: str) -> None:
        with translate("cancel tuning job"):
            self.client.tunings.cancel(name=name)

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # closing is best effort
            pass


def to_view(job) -> JobView:
    state = job.state.value if job.state is not None and hasattr(job.state, "value") else job.state
    sts = job.supervised_tuning_spec
    hp = sts.hyper_parameters if sts else None
    stats = job.tuning_data_stats.supervised_tuning_data_stats if job.tuning_data_stats else None
    tm = job.tuned_model
    err = job.error
    return JobView(
        name=job.name or "",
        state=str(state) if state is not None else None,
        labels=dict(job.labels or {}),
        base_model=job.base_model,
        display_name=job.tuned_model_display_name,
        create_time=job.create_time, start_time=job.start_time, end_time=job.end_time,
        error_message=(err.message or None) if err else None,
        error_code=_int(err.code) if err else None,
        tuned_model=tm.model if tm else None,
        endpoint=tm.endpoint if tm else None,
        checkpoints=[c.endpoint or c.checkpoint_id for c in (tm.checkpoints or [])
                     if c.endpoint or c.checkpoint_id] if tm else [],
        example_count=_int(stats.tuning_dataset_example_count) if stats else None,
        billable_tokens=_int(stats.total_billable_token_count) if stats else None,
        step_count=_int(stats.tuning_step_count) if stats else None,
        truncated_examples=_int(stats.total_truncated_example_count) if stats else None,
        dropped_reasons=list(stats.dropped_example_reasons or []) if stats else [],
        completed_steps=_int(job.tuning_job_metadata.completed_step_count)
        if job.tuning_job_metadata else None,
        epoch_count=_int(hp.epoch_count) if hp else None,
        adapter_size=(hp.adapter_size.value if hp and hp.adapter_size is not None
                      and hasattr(hp.adapter_size, "value") else None),
        gcs_metrics_uri=job.gcs_metrics_uri,
        experiment=job.experiment,
        raw=job.model_dump(mode="json", exclude_none=True, exclude={"sdk_http_response"}),
    )
