"""VertexProvider: Gemini supervised tuning on Google Vertex AI, as a translation table plus a thin
adapter over its SDKs.

    options_model   VertexOptions (options.py): project, location, bucket, prefix, endpoint,
                    api_version, client, key_file
    locate          the Location stored with the job (project, region, endpoint, client, bucket…)
    data_target     Gemini `contents` JSONL ("vertex"), validated against vertex:<model>
    translate       translate.py: the tuningJobs REST body and the plan rows, in one table
    upload          content-addressed GCS object (HEAD, then PUT only when absent)
    create          ONE POST …/tuningJobs through google-genai or GAPIC (retries off)
    lookup          lists the location's jobs by the `unitune_key` label
    read/cancel/metrics/events   from the RemoteRef alone (connection info in `ref.extra`)

Metrics: Google documents the tuning curves in Vertex AI Experiments (`TuningJob.experiment`),
which unitune does not read; there is no documented metrics file format. When the job reports a
`gcs_metrics_uri`, that file is read (format unverified, by column name); otherwise `metrics`
raises MetricsUnavailable naming the experiment instead of returning an empty table. State mapping and its choices: states.py.
"""
from __future__ import annotations

import importlib.util
from typing import Any, ClassVar

from unitune.backends import Capabilities
from unitune.data.report import Problem
from unitune.errors import InvalidRequest, MetricsUnavailable, SpecError
from unitune.job import Event, Metrics, RemoteRef, Snapshot
from unitune.provider import (DataTarget, Ids, Location, Prepared, PreparedFile, Translation,
                              placeholder)

from . import jobview
from .connection import ClientCache, Conn
from .gcs import dataset_object, read_metrics, split_uri, upload_once
from .options import VertexOptions, locate
from .translate import KEY_LABEL, capabilities, label_value, translate

_CLIENT_SDK = {"genai": ("google.genai", "vertex"),
               "aiplatform": ("google.cloud.aiplatform_v1", "vertex-aiplatform")}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class VertexProvider:
    """Google Vertex AI Gemini supervised tuning (see the module docstring)."""

    name = "vertex"
    extra: ClassVar[str | None] = "vertex"
    requires: ClassVar[tuple[str, ...]] = ("google.auth", "google.cloud.storage")
    options_model: ClassVar[type[VertexOptions]] = VertexOptions

    def __init__(self) -> None:
        self._clients = ClientCache()

    def capabilities(self) -> Capabilities:
        return capabilities()

    def locate(self, spec: Any, options: VertexOptions) -> Location:
        return locate(options)

    def data_target(self, spec: Any, options: VertexOptions) -> DataTarget:
        return DataTarget(format="vertex", validate=f"vertex:{spec.model_for(self.name)}")

    def translate(self, spec: Any, prepared: Prepared, location: Location,
                  options: VertexOptions, ids: Ids) -> Translation:
        out = translate(spec, prepared, location, options, ids)
        module, extra = _CLIENT_SDK[location.extra.get("client", "genai")]
        if not _installed(module):
            out.problems.append(Problem("missing_dependency", f"the Vertex {location.extra.get('client')} "
                                        f"client needs {module}, which is not installed",
                                        hint=f"pip install 'unitune[{extra}]'"))
        return out

    # -- data --------------------------------------------------------------------------------------
    def destination(self, file: PreparedFile, location: Location, options: Any) -> str:
        bucket = location.extra.get("bucket")
        if not bucket:
            return placeholder(f"upload:{file.which}")
        return f"gs://{bucket}/{dataset_object(location.extra.get('prefix', 'unitune'), file.sha256)}"

    def upload(self, file: PreparedFile, location: Location, options: Any) -> str:
        uri = self.destination(file, location, options)
        if not uri.startswith("gs://"):
            raise SpecError("no Vertex bucket for the training data",
                            field="backend_options.vertex.bucket",
                            hint="set backend_options.vertex.bucket or UNITUNE_VERTEX_BUCKET")
        conn = Conn.from_location(location, options)
        bucket, name = split_uri(uri)
        upload_once(self._clients.storage(conn), bucket, name, file.path)
        return uri

    # -- jobs --------------------------------------------------------------------------------------
    def create(self, request: dict[str, Any], ids: Ids, location: Location,
               options: Any) -> RemoteRef:
        conn = Conn.from_location(location, options)
        return conn.ref(self._clients.tuning(conn).create(request).name)

    def lookup(self, key: str, location: Location, options: Any) -> RemoteRef | None:
        conn = Conn.from_location(location, options)
        value = label_value(key)
        matches = [v for v in self._clients.tuning(conn).list_labelled(KEY_LABEL, value)
                   if v.labels.get(KEY_LABEL) == value]  # never trust the filter alone
        if not matches:
            return None
        matches.sort(key=lambda v: (v.create_time is None, v.create_time))
        return conn.ref(matches[0].name)

    def _view(self, ref: RemoteRef) -> tuple[jobview.JobView, Any, Conn]:
        conn = Conn.from_ref(ref)
        client = self._clients.tuning(conn)
        return client.get(ref.remote_id), client, conn

    def read(self, ref: RemoteRef) -> Snapshot:
        return jobview.snapshot(ref, self._view(ref)[0])

    def cancel(self, ref: RemoteRef) -> Snapshot:
        conn = Conn.from_ref(ref)
        client = self._clients.tuning(conn)
        try:
            client.cancel(ref.remote_id)
        except InvalidRequest:
            view = client.get(ref.remote_id)
            if not view.status.is_terminal:
                raise
            return jobview.snapshot(ref, view)  # already over: nothing to cancel
        return jobview.snapshot(ref, client.get(ref.remote_id))

    def metrics(self, ref: RemoteRef) -> list[Metrics]:
        view, client, conn = self._view(ref)
        uri = view.gcs_metrics_uri
        if uri is None and hasattr(client, "extras"):
            uri = client.extras(ref.remote_id).get("gcsMetricsUri")
        if uri:
            return sorted(read_metrics(self._clients.storage(conn), uri), key=lambda r: r.step)
        if view.experiment:
            raise MetricsUnavailable(
                f"Vertex AI keeps the training curves of {ref.remote_id} in Vertex AI Experiments "
                f"({view.experiment}); the job reports no gcs_metrics_uri, so unitune has no "
                "metrics table for it", backend=self.name,
                hint="open the tuning job in the Google Cloud console (Vertex AI → Tuning → "
                     "Monitor), or read the experiment run with the Vertex AI SDK")
        return []  # not started yet: no curves anywhere

    def events(self, ref: RemoteRef) -> list[Event]:
        return jobview.events(self._view(ref)[0])
