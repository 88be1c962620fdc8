"""The alternative client: GAPIC `google.cloud.aiplatform_v1.GenAiTuningServiceClient`.

Chosen with `backend_options.vertex.client: aiplatform` (extra `unitune[vertex-aiplatform]`,
which cannot share an environment with google-genai ≥ 3). Not the deprecated `vertexai.tuning`.
gRPC against Google's regional endpoint; REST when an endpoint override is given.

Quirks: the REST transport sends `epochCount` as a string and `adapterSize` as an enum number
(numbers not in size order: ONE=1, FOUR=2, EIGHT=3, SIXTEEN=4, THIRTY_TWO=5, TWO=6), asks for
`enum-encoding=int`, and drops fields its v1 proto lacks — `gcsMetricsUri` and
`tuningJobMetadata` among them. Those two are read with one authorized REST GET of the same job
(`extras`) when metrics are asked for.
"""
from __future__ import annotations

import warnings
from datetime import datetime
from typing import Any, Iterator

from .jobview import CreateRequest, JobView, _int
from .settings import VertexSettings
from .vendor_errors import translate


class AiplatformTuningClient:
    kind = "aiplatform"

    def __init__(self, settings: VertexSettings, credentials) -> None:
        from unitune.backends import import_sdk

        # api_version v1 (default) or v1beta1 picks the matching GAPIC package
        self.v1 = import_sdk(f"google.cloud.aiplatform_{settings.api_version}", "vertex-aiplatform")
        from google.api_core.client_options import ClientOptions

        self.settings = settings
        self.credentials = credentials
        endpoint = settings.endpoint or f"{settings.location}-aiplatform.googleapis.com"
        with translate("client setup"):
            self.client = self.v1.GenAiTuningServiceClient(
                credentials=credentials, transport="rest" if settings.endpoint else "grpc",
                client_options=ClientOptions(api_endpoint=endpoint))

    def create(self, req: CreateRequest) -> JobView:
        v1 = self.v1
        hp: dict[str, Any] = {}
        if req.epoch_count is not None:
            hp["epoch_count"] = req.epoch_count
        if req.learning_rate_multiplier is not None:
            hp["learning_rate_multiplier"] = req.learning_rate_multiplier
        if req.adapter_size:
            hp["adapter_size"] = v1.SupervisedHyperParameters.AdapterSize[req.adapter_size]
        spec = v1.SupervisedTuningSpec(training_dataset_uri=req.training_uri,
                                       hyper_parameters=v1.SupervisedHyperParameters(**hp))
        if req.validation_uri:
            spec.validation_dataset_uri = req.validation_uri
        job = v1.TuningJob(base_model=req.base_model, supervised_tuning_spec=spec,
                           labels=req.labels)
        if req.display_name:
            job.tuned_model_display_name = req.display_name
        if req.description:
            job.description = req.description
        with translate("create tuning job"):
            # retry=None: a re-sent create could make a second job; the backend looks the job
            # up by label instead.
            created = self.client.create_tuning_job(parent=self.settings.parent, tuning_job=job,
                                                    retry=None, timeout=60)
        return self.to_view(created)

    def get(self, name: str) -> JobView:
        with translate("get tuning job"):
            return self.to_view(self.client.get_tuning_job(name=name, timeout=60))

    def list_labelled(self, key: str, value: str) -> Iterator[JobView]:
        with translate("list tuning jobs"):
            pager = self.client.list_tuning_jobs(request={
                "parent": self.settings.parent, "filter": f'labels.{key}="{value}"',
                "page_size": 50}, timeout=60)
            for job in pager:
                yield self.to_view(job)

    def cancel(self, name: str) -> None:
        with translate("cancel tuning job"):
            self.client.cancel_tuning_job(name=name, timeout=60)

    def extras(self, name: str) -> dict[str, Any]:
        """gcsMetricsUri and tuningJobMetadata, which the v1 proto does not carry."""
        from google.auth.transport.requests import AuthorizedSession

        url = f"{self.settings.base_url}/{self.settings.api_version}/{name}"
        with translate("get tuning job"):
            session = AuthorizedSession(self.credentials)
            try:
                resp = session.get(url, timeout=60)
            finally:
                session.close()
        if resp.status_code != 200:
            return {}
        body = resp.json()
        return {"gcsMetricsUri": body.get("gcsMetricsUri"),
                "tuningJobMetadata": body.get("tuningJobMetadata") or {}}

    def close(self) -> None:
        try:
            self.client.transport.close()
        except Exception:  # closing is best effort
            pass

    def to_view(self, job) -> JobView:
        v1 = self.v1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Unrecognized JobState enum value": kept as number
            state = job.state
        if isinstance(state, int) and not hasattr(state, "name"):
            raw_state = str(state)  # a number this client's enum does not know
        else:
            try:
                raw_state = v1.JobState(state).name
            except ValueError:
                raw_state = str(int(state))
        spec = job.supervised_tuning_spec
        hp = spec.hyper_parameters if spec else None
        stats = job.tuning_data_stats.supervised_tuning_data_stats
        has_stats = "tuning_data_stats" in job and "supervised_tuning_data_stats" in job.tuning_data_stats
        tm = job.tuned_model
        has_error = "error" in job
        size = None
        if hp and hp.adapter_size:
            try:
                size = v1.SupervisedHyperParameters.AdapterSize(hp.adapter_size).name
            except ValueError:
                size = None
        return JobView(
            name=job.name,
            state=raw_state,
            labels=dict(job.labels),
            base_model=job.base_model or None,
            display_name=job.tuned_model_display_name or None,
            create_time=_dt(job, "create_time"), start_time=_dt(job, "start_time"),
            end_time=_dt(job, "end_time"),
            error_message=(job.error.message or None) if has_error else None,
            error_code=_int(job.error.code) if has_error else None,
            tuned_model=tm.model or None,
            endpoint=tm.endpoint or None,
            checkpoints=[c.endpoint or c.checkpoint_id for c in tm.checkpoints
                         if c.endpoint or c.checkpoint_id],
            example_count=_int(stats.tuning_dataset_example_count) if has_stats else None,
            billable_tokens=_int(stats.total_billable_token_count) if has_stats else None,
            step_count=_int(stats.tuning_step_count) if has_stats else None,
            truncated_examples=_int(stats.total_truncated_example_count) if has_stats else None,
            dropped_reasons=list(stats.dropped_example_reasons) if has_stats else [],
            completed_steps=None,
            epoch_count=_int(hp.epoch_count) or None if hp else None,
            adapter_size=size,
            gcs_metrics_uri=None,
            experiment=job.experiment or None,
            raw=type(job).to_dict(job, preserving_proto_field_name=False,
                                 use_integers_for_enums=False),
        )


def _dt(job, field: str) -> datetime | None:
    if field not in job:
        return None
    value = getattr(job, field)
    return value if isinstance(value, datetime) else None
