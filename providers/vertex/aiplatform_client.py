"""The alternative client: GAPIC `google.cloud.aiplatform_v1.GenAiTuningServiceClient`.

Chosen with `backend_options.vertex.client: aiplatform` (extra `unitune[vertex-aiplatform]`,
which cannot share an environment with google-genai ≥ 3). Not the deprecated `vertexai.tuning`.
gRPC against Google's regional endpoint; REST when an endpoint override is given.

`create` parses the translated REST body straight into a `TuningJob` (proto3 JSON mapping; an
unknown field is an error, never dropped), so GAPIC sends the same body as google-genai. Its REST
transport encodes it differently — int64 as strings (`"epochCount": "3"`), enums as numbers not in
size order (ONE=1, FOUR=2, EIGHT=3, SIXTEEN=4, THIRTY_TWO=5, TWO=6) — which proto3 JSON defines
as the same values. Retries are off on every call (`retry=None`). The v1 proto lacks
`gcsMetricsUri` and `tuningJobMetadata`; `extras` reads them with one authorized REST GET.
"""
from __future__ import annotations

import json
import warnings
from datetime import datetime
from typing import Any

from unitune.errors import InvalidRequest

from .connection import Conn
from .jobview import JobView, as_int
from .vendor_errors import translate


class AiplatformTuningClient:
    kind = "aiplatform"

    def __init__(self, conn: Conn, credentials) -> None:
        from unitune.backends import import_sdk

        # api_version v1 (default) or v1beta1 picks the matching GAPIC package
        self.v1 = import_sdk(f"google.cloud.aiplatform_{conn.api_version}", "vertex-aiplatform")
        from google.api_core.client_options import ClientOptions

        self.conn = conn
        self.credentials = credentials
        endpoint = conn.endpoint or f"{conn.location}-aiplatform.googleapis.com"
        with translate("client setup"):
            self.client = self.v1.GenAiTuningServiceClient(
                credentials=credentials, transport="rest" if conn.endpoint else "grpc",
                client_options=ClientOptions(api_endpoint=endpoint))

    def tuning_job(self, body: dict[str, Any]):
        """The TuningJob message for a REST body (refusing fields the proto does not have)."""
        from google.protobuf.json_format import ParseError

        try:
            return self.v1.TuningJob.from_json(json.dumps(body), ignore_unknown_fields=False)
        except ParseError as exc:
            raise InvalidRequest(f"the aiplatform client cannot send this request: {exc}",
                                 backend="vertex", hint="use backend_options.vertex.client: "
                                 "genai") from exc

    def create(self, body: dict[str, Any]) -> JobView:
        job = self.tuning_job(body)
        with translate("create tuning job"):
            created = self.client.create_tuning_job(parent=self.conn.parent, tuning_job=job,
                                                    retry=None, timeout=60)
        return self.to_view(created)

    def get(self, name: str) -> JobView:
        with translate("get tuning job"):
            return self.to_view(self.client.get_tuning_job(name=name, retry=None, timeout=60))

    def list_labelled(self, key: str, value: str) -> list[JobView]:
        with translate("list tuning jobs"):
            pager = self.client.list_tuning_jobs(request={
                "parent": self.conn.parent, "filter": f'labels.{key}="{value}"',
                "page_size": 50}, retry=None, timeout=60)
            return [self.to_view(job) for job in pager]

    def cancel(self, name: str) -> None:
        with translate("cancel tuning job"):
            self.client.cancel_tuning_job(name=name, retry=None, timeout=60)

    def extras(self, name: str) -> dict[str, Any]:
        """gcsMetricsUri and tuningJobMetadata, which the v1 proto does not carry."""
        from google.auth.transport.requests import AuthorizedSession

        url = f"{self.conn.base_url}/{self.conn.api_version}/{name}"
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
        has_stats = "tuning_data_stats" in job and \
            "supervised_tuning_data_stats" in job.tuning_data_stats
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
            error_code=as_int(job.error.code) if has_error else None,
            tuned_model=tm.model or None,
            endpoint=tm.endpoint or None,
            checkpoints=[c.endpoint or c.checkpoint_id for c in tm.checkpoints
                         if c.endpoint or c.checkpoint_id],
            example_count=as_int(stats.tuning_dataset_example_count) if has_stats else None,
            billable_tokens=as_int(stats.total_billable_token_count) if has_stats else None,
            step_count=as_int(stats.tuning_step_count) if has_stats else None,
            truncated_examples=as_int(stats.total_truncated_example_count) if has_stats else None,
            dropped_reasons=list(stats.dropped_example_reasons) if has_stats else [],
            completed_steps=None,
            epoch_count=as_int(hp.epoch_count) or None if hp else None,
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
