"""`OpenAIBackend`: submit (convert, upload once per content hash, create exactly once), then
get / cancel / pause / resume, events, metrics and checkpoints of a job.

The options and clients (`client.py`), error mapping (`vendor_errors.py`) and capabilities,
checks and plan (`plan.py`) are mixins this class is assembled from."""
from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path
from typing import Any, Callable

from unitune.backends import SubmitContext, import_sdk
from unitune.errors import (BackendError, DataError, MissingDependency, QuotaExceeded,
                            UnituneError, Unsupported)
from unitune.job import (Event, JobError, JobStatus, Metrics, ModelHandle, Progress, RemoteRef,
                         Snapshot, map_status, merge_metrics)
from unitune.spec import JobSpec

from .client import ClientMixin
from .fields import _field, _plain, _ts
from .metrics import _num, metrics_from_event_data, parse_result_csv
from .naming import META_KEY, _slug
from .plan import PlanMixin
from .status import STATUS_MAP
from .vendor_errors import VendorErrorsMixin


class OpenAIBackend(ClientMixin, VendorErrorsMixin, PlanMixin):
    """OpenAI fine-tuning (`openai.OpenAI`). Options (`backend_options.openai` or
    `UNITUNE_OPENAI_<OPTION>`): base_url, organization, project, api_key_env, timeout,
    max_retries, create_attempts, poll_interval, wandb{project,entity,name,tags}, integrations,
    ignore_lifecycle, today (evaluate lifecycle dates as of this ISO date)."""

    name = "openai"
    display = "OpenAI"
    key_env = "OPENAI_API_KEY"

    def __init__(self, *, client: Any = None, options: dict[str, Any] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 log: Callable[[str], None] | None = None) -> None:
        self._injected = client
        self._options = dict(options or {})
        self._sleep = sleep
        self._log = log or (lambda msg: print(msg, file=sys.stderr))
        self._clients: dict[tuple, Any] = {}
        self._last_conn: dict[str, Any] | None = None

    # -- submit ------------------------------------------------------------------------------------
    def submit(self, spec: JobSpec, ctx: SubmitContext) -> RemoteRef:
        opts = self._opts(spec)
        conn = self._conn(opts)
        self._last_conn = conn
        problems = self.check(spec)
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            if all(p.code.startswith("unsupported") for p in errors):
                raise Unsupported(f"{self.display} cannot run this spec: "
                                  + "; ".join(p.message for p in errors),
                                  feature=errors[0].path, backend=self.name,
                                  hint=errors[0].hint or "run `unitune plan` to see every problem")
            from unitune.data.report import Report

            lines = [f"  {p.file or ''}{':' + str(p.line) if p.line else ''} {p.message}".rstrip()
                     for p in errors[:10]]
            raise DataError(f"{self.display} refused the job before upload ({len(errors)} "
                            "problem(s)):\n" + "\n".join(lines),
                            report=Report(file=str(spec.data_path("train")), problems=problems),
                            hint="`unitune plan` / `unitune validate` show every problem")
        # warnings (lifecycle dates, settings not applied) are printed by the Client from check()
        client = self._client(conn, opts)
        existing = self._lookup(client, conn, ctx.idempotency_key)
        if existing is not None:
            ctx.log(f"{self.display} already has this job ({_field(existing, 'id')}); not creating another")
            return self._ref(_field(existing, "id"), conn)
        train_id = self._upload(client, conn, opts, spec, "train", ctx)
        val_id = self._upload(client, conn, opts, spec, "validation", ctx)
        params = self.create_params(spec, job_id=ctx.job_id, key=ctx.idempotency_key,
                                    training_file=train_id, validation_file=val_id, opts=opts)
        job = self._create_once(client, conn, opts, params, self._extra_body(spec, opts), ctx)
        return self._ref(_field(job, "id"), conn)

    def _create_once(self, client: Any, conn: dict[str, Any], opts: dict[str, Any],
                     params: dict[str, Any], extra_body: dict[str, Any] | None,
                     ctx: SubmitContext) -> Any:
        """Create with SDK retries off; before every retry, look the job up by its key."""
        openai = import_sdk("openai", "openai")
        once = client.with_options(max_retries=0)
        attempts = max(1, int(opts.get("create_attempts", 6)))
        base = float(opts.get("retry_base", 0.5))
        key = params["metadata"][META_KEY]
        need_lookup = False
        last: BaseException | None = None
        for attempt in range(attempts):
            if need_lookup:
                try:
                    found = self._lookup(client, conn, key)
                except BackendError as exc:  # cannot tell whether it exists: never create blindly
                    last = exc
                    self._sleep(min(30.0, base * 2 ** attempt))
                    continue
                if found is not None:
                    ctx.log(f"the job was created although the response was lost: {_field(found, 'id')}")
                    return found
                need_lookup = False
            try:
                kw = dict(params)
                if extra_body:
                    kw["extra_body"] = extra_body
                return once.fine_tuning.jobs.create(**kw)
            except openai.APIStatusError as exc:
                if exc.status_code not in (408, 409, 429) and exc.status_code < 500:
                    raise self._map(exc, "create the fine-tuning job", conn) from exc
                last = exc
                mapped = self._map(exc, "create the fine-tuning job", conn)
                if isinstance(mapped, QuotaExceeded):  # waiting will not help
                    raise mapped from exc
                wait = mapped.retry_after if getattr(mapped, "retry_after", None) else base * 2 ** attempt
            except openai.APIConnectionError as exc:  # includes timeouts: the job may exist now
                last = exc
                wait = base * 2 ** attempt
            need_lookup = True
            ctx.log(f"create did not answer cleanly ({type(last).__name__}); looking the job up "
                    f"before retrying in {wait:.2f}s")
            self._sleep(min(30.0, wait))
        if need_lookup:  # the last create may have gone through: one more look before giving up
            try:
                found = self._lookup(client, conn, key)
            except BackendError:
                found = None
            if found is not None:
                return found
        assert last is not None
        if isinstance(last, UnituneError):
            raise last
        raise self._map(last, "create the fine-tuning job", conn) from last

    def _lookup(self, client: Any, conn: dict[str, Any], key: str) -> Any | None:
        """The job carrying `key` in its metadata (the oldest if there were ever several)."""
        found = []
        after = None
        for _ in range(50):  # ≤ 5,000 jobs even when a server ignores the metadata filter
            kw: dict[str, Any] = {"limit": 100, "metadata": {META_KEY: key}}
            if after:
                kw["after"] = after
            page = self._call("look the job up", conn, lambda: client.fine_tuning.jobs.list(**kw))
            data = list(page.data)
            found.extend(j for j in data if (_field(j, "metadata") or {}).get(META_KEY) == key)
            if not data or not page.has_more:
                break
            after = _field(data[-1], "id")
        if not found:
            return None
        found.sort(key=lambda j: (_field(j, "created_at") or 0, _field(j, "id")))
        if len(found) > 1:
            self._log(f"warning: {len(found)} {self.display} jobs carry key {key}: "
                      + ", ".join(_field(j, "id") for j in found) + f"; using {_field(found[0], 'id')}")
        return found[0]

    def find(self, idempotency_key: str) -> RemoteRef | None:
        conn = self._last_conn or self._conn(self._opts())
        client = self._client(conn)
        job = self._lookup(client, conn, idempotency_key)
        return None if job is None else self._ref(_field(job, "id"), conn)

    def _upload(self, client: Any, conn: dict[str, Any], opts: dict[str, Any], spec: JobSpec,
                which: str, ctx: SubmitContext) -> str | None:
        src = self._source_file(spec, which, ctx)
        if src is None:
            return None
        fmt = "openai-dpo" if spec.method == "dpo" else "openai"
        dst = Path(ctx.work_dir) / f"{which}.{fmt}.jsonl"
        try:
            from unitune.data.prepared import convert_cached
        except ImportError as exc:  # pragma: no cover - part of the core
            raise MissingDependency("unitune.data.convert is missing", hint="reinstall unitune") from exc
        # converted once per content: a retried submit or another job on this data reuses it
        result = convert_cached(str(src), fmt, str(dst), fmt=spec.data.format or "auto")
        examples = getattr(result, "examples", None)
        written = getattr(result, "written", examples)
        if not written:
            raise DataError(f"{src}: no example could be converted to {fmt}",
                            hint=f"`unitune validate {src} --target {self.name}:{spec.model_for(self.name)}`")
        dropped = list(getattr(result, "errors", []) or [])
        if dropped:
            ctx.log(f"{which}: {len(dropped)} line(s) could not be converted and are left out, first: "
                    f"line {getattr(dropped[0], 'line', '?')}: {getattr(dropped[0], 'message', dropped[0])}")
        warnings = list(getattr(result, "warnings", []) or [])
        if warnings:
            ctx.log(f"{which}: {len(warnings)} conversion warning(s), first: "
                    f"{getattr(warnings[0], 'message', warnings[0])}")
        digest = hashlib.sha256(dst.read_bytes()).hexdigest()
        cache_key = f"{self._fingerprint(conn)}:{fmt}:{digest}"
        if ctx.uploads is not None:
            cached = ctx.uploads.get(self.name, cache_key)
            if cached and self._file_usable(client, conn, cached):
                ctx.log(f"{which}: reusing uploaded file {cached} (same content)")
                return cached
        ctx.log(f"{which}: uploading {written} examples ({dst.stat().st_size} bytes)")
        with open(dst, "rb") as fh:
            f = self._call(f"upload {which} file", conn,
                           lambda: client.files.create(file=(f"{_slug(spec.name)}-{which}.jsonl", fh),
                                                       purpose="fine-tune"))
        fid = _field(f, "id")
        poll = float(opts.get("poll_interval", 2.0))
        f = self._call(f"wait for {which} file processing", conn,
                       lambda: client.files.wait_for_processing(fid, poll_interval=poll,
                                                                max_wait_seconds=float(opts.get("upload_wait_s", 1800))))
        if _field(f, "status") == "error":
            raise DataError(f"{self.display} rejected the {which} file {fid}: "
                            f"{_field(f, 'status_details') or 'no details given'}",
                            hint=f"`unitune validate {src} --target {self.name}:{spec.model_for(self.name)}`")
        if ctx.uploads is not None:
            ctx.uploads.put(self.name, cache_key, fid)
        return fid

    def _source_file(self, spec: JobSpec, which: str, ctx: SubmitContext) -> Path | None:
        """The file to convert; a validation *fraction* is split off the training file first."""
        frac = spec.data.validation
        if not isinstance(frac, float):
            return spec.data_path(which)
        split_dir = Path(ctx.work_dir) / "split"
        train_out, val_out = split_dir / "train.jsonl", split_dir / "validation.jsonl"
        if not (train_out.exists() and val_out.exists()):
            from unitune.data.prepared import split_cached

            split_dir.mkdir(parents=True, exist_ok=True)
            split_cached(str(spec.data_path("train")), frac, spec.hyperparameters.seed or 0,
                         str(train_out), str(val_out))
        return train_out if which == "train" else val_out

    def _fingerprint(self, conn: dict[str, Any]) -> str:
        where = "|".join(f"{k}={conn[k]}" for k in sorted(conn) if k != "api_key_env")
        return hashlib.sha256(where.encode()).hexdigest()[:12]

    def _file_usable(self, client: Any, conn: dict[str, Any], fid: str) -> bool:
        try:
            f = self._call("check the cached file", conn, lambda: client.files.retrieve(fid))
        except BackendError:
            return False
        return _field(f, "status") != "error" and _field(f, "purpose") == "fine-tune"

    # -- reading -----------------------------------------------------------------------------------
    def _snapshot(self, job: Any, ref: RemoteRef, client: Any, conn: dict[str, Any]) -> Snapshot:
        raw = _field(job, "status")
        status = map_status(raw, STATUS_MAP)
        err = _field(job, "error")
        error = None
        if err is not None:
            msg, code, param = _field(err, "message"), _field(err, "code"), _field(err, "param")
            if msg or code or param:  # all-null fields = no error
                error = JobError(message=msg or f"failed with code {code}", code=code, param=param)
        if status is JobStatus.FAILED and error is None:
            error = JobError(message=f"{self.display} reported the job failed without a message")
        model = None
        ftm = _field(job, "fine_tuned_model")
        if ftm:
            ckpts: list[str] = []
            if status is JobStatus.SUCCEEDED:
                try:
                    ckpts = [c["model"] for c in self.checkpoints(ref)]
                except BackendError:
                    pass
            model = ModelHandle(backend=self.name, model_id=ftm, base_model=_field(job, "model"),
                                name=ftm, checkpoints=ckpts, invoke=self._invoke_hint(ftm))
        progress = None
        if status is JobStatus.RUNNING:
            progress = self._progress(client, conn, job)
        tokens = _field(job, "trained_tokens")
        plain = _plain(job)
        if isinstance(plain, dict):
            plain = {k: v for k, v in plain.items() if k not in ("api_key",)}
        return Snapshot(ref=ref, status=status, raw_status=raw, created_at=_ts(_field(job, "created_at")),
                        finished_at=_ts(_field(job, "finished_at")), trained_tokens=tokens,
                        billed_tokens=tokens, error=error, model=model, progress=progress,
                        estimated_finish=_ts(_field(job, "estimated_finish")), raw=plain)

    def _invoke_hint(self, model_id: str) -> str:
        return f'OpenAI().chat.completions.create(model="{model_id}", messages=[...])'

    def _epochs(self, job: Any) -> int | None:
        for src in (_field(job, "hyperparameters"),
                    _field(_field(_field(job, "method") or {}, _field(_field(job, "method") or {}, "type") or "supervised") or {}, "hyperparameters")):
            n = _field(src or {}, "n_epochs")
            if isinstance(n, int):
                return n
        return None

    def _progress(self, client: Any, conn: dict[str, Any], job: Any) -> Progress | None:
        try:
            page = self._call("read events", conn,
                              lambda: client.fine_tuning.jobs.list_events(_field(job, "id"), limit=20))
        except BackendError:
            return None
        for ev in page.data:  # newest first
            if _field(ev, "type") == "metrics" and _field(ev, "data"):
                data = _plain(_field(ev, "data"))
                row = metrics_from_event_data(data, epochs=self._epochs(job))
                if row is None:
                    continue
                eta = None
                fin = _field(job, "estimated_finish")
                if fin:
                    eta = max(0.0, float(fin) - time.time())
                total = _num(data.get("total_steps"))
                return Progress(step=row.step, total_steps=int(total) if total else None,
                                epoch=row.epoch, latest_loss=row.train_loss, eta_seconds=eta)
        return None

    def get(self, ref: RemoteRef) -> Snapshot:
        return self._on_job(ref, "read the job", "retrieve")

    def cancel(self, ref: RemoteRef) -> Snapshot:
        return self._on_job(ref, "cancel the job", "cancel")

    def pause(self, ref: RemoteRef) -> Snapshot:
        return self._on_job(ref, "pause the job", "pause")

    def resume(self, ref: RemoteRef) -> Snapshot:
        return self._on_job(ref, "resume the job", "resume")

    def _on_job(self, ref: RemoteRef, action: str, method: str) -> Snapshot:
        """Call `client.fine_tuning.jobs.<method>(job id)` and snapshot the job it answers with;
        an API error is mapped as failing to `action`."""
        client, conn = self._ref_client(ref)
        job = self._call(action, conn,
                         lambda: getattr(client.fine_tuning.jobs, method)(ref.remote_id))
        return self._snapshot(job, ref, client, conn)

    def list_remote(self, limit: int = 20) -> list[Snapshot]:
        """The account's most recent jobs (any creator), newest first."""
        conn = self._last_conn or self._conn(self._opts())
        client = self._client(conn)
        page = self._call("list jobs", conn, lambda: client.fine_tuning.jobs.list(limit=limit))
        return [self._snapshot(j, self._ref(_field(j, "id"), conn), client, conn)
                for j in list(page.data)[:limit]]

    def _raw_events(self, client: Any, conn: dict[str, Any], job_id: str) -> list[Any]:
        out: list[Any] = []
        after = None
        for _ in range(1000):
            kw: dict[str, Any] = {"limit": 100}
            if after:
                kw["after"] = after
            page = self._call("read events", conn,
                              lambda: client.fine_tuning.jobs.list_events(job_id, **kw))
            data = list(page.data)
            out.extend(data)
            if not data or not page.has_more:
                break
            after = _field(data[-1], "id")
        out.reverse()  # the API lists newest first; reversed keeps order within one second
        out.sort(key=lambda e: (_field(e, "created_at") or 0))  # stable: oldest first
        return out

    def events(self, ref: RemoteRef) -> list[Event]:
        client, conn = self._ref_client(ref)
        raw = self._raw_events(client, conn, ref.remote_id)
        level = {"warn": "warning"}
        return [Event(time=_ts(_field(e, "created_at")), level=level.get(_field(e, "level"), _field(e, "level") or "info"),
                      message=_field(e, "message") or "", data=_plain(_field(e, "data")) or None)
                for e in raw]

    def metrics(self, ref: RemoteRef) -> list[Metrics]:
        client, conn = self._ref_client(ref)
        job = self._call("read the job", conn, lambda: client.fine_tuning.jobs.retrieve(ref.remote_id))
        epochs = self._epochs(job)
        rows: list[Metrics] = []
        for ev in self._raw_events(client, conn, ref.remote_id):
            if _field(ev, "type") == "metrics" and _field(ev, "data"):
                row = metrics_from_event_data(_plain(_field(ev, "data")), epochs=epochs)
                if row is not None:
                    rows.append(row)
        total = max((r.step for r in rows), default=None)
        for fid in (_field(job, "result_files") or [])[:1]:  # Azure may send null
            content = self._call("download the result file", conn,
                                 lambda: client.files.content(fid))
            data = content.read() if hasattr(content, "read") else content
            csv_rows = parse_result_csv(data)
            total = total or max((r.step for r in csv_rows), default=None)
            if epochs and total:
                csv_rows = [r.model_copy(update={"epoch": round(r.step / (total / epochs), 4)})
                            for r in csv_rows]
            rows.extend(csv_rows)
        return merge_metrics(rows)

    def checkpoints(self, ref: RemoteRef) -> list[dict[str, Any]]:
        """Checkpoint models (newest first): model id, step and the metrics at that step."""
        client, conn = self._ref_client(ref)
        page = self._call("list checkpoints", conn,
                          lambda: client.fine_tuning.jobs.checkpoints.list(ref.remote_id, limit=100))
        return [{"model": _field(c, "fine_tuned_model_checkpoint"), "step": _field(c, "step_number"),
                 "metrics": _plain(_field(c, "metrics")) or {}} for c in page.data]
