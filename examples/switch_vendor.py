"""Switch vendors by changing one argument: the same spec trained on two backends.

    python examples/switch_vendor.py                  # two fake vendors, offline, in seconds
    python examples/switch_vendor.py openai bedrock   # the real thing (credentials from the env)

The spec is examples/quickstart.yaml, untouched: it names a base model per backend, so
`client.train(spec, backend=name)` is the only line that differs between vendors. The results
come back in the same shapes everywhere (Job, Metrics rows, ModelHandle).

With no arguments it runs against two in-memory FakeProvider instances (`unitune.testing`)
registered as "fake" and "fake-b", in a temporary UNITUNE_HOME so your registry stays clean.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import unitune
from unitune.client import PollPolicy
from unitune.testing.fake import FakeProvider

SPEC = Path(__file__).with_name("quickstart.yaml")


class SecondFakeVendor(FakeProvider):
    """A second fake vendor, so the demo shows two backends without any account."""

    name = "fake-b"


def train_on(client: unitune.Client, spec: unitune.JobSpec, backend: str) -> unitune.Job:
    job = client.train(spec, backend=backend)  # ← the one argument that changes
    print(f"{backend:>8}: {job.id} {job.status} ({job.raw_status}) "
          f"model={job.model.model_id if job.model else '-'}")
    return job


def main(argv: list[str]) -> int:
    backends = argv or ["fake", "fake-b"]
    spec = unitune.JobSpec.load(SPEC)
    demo = all(b.startswith("fake") for b in backends)
    if demo:
        os.environ.setdefault("UNITUNE_HOME", tempfile.mkdtemp(prefix="unitune-switch-"))
        # quickstart.yaml names no model for the fakes; pretend they offer these two
        spec.models.update({"fake": "fake-small", "fake-b": "fake-large"})
        client = unitune.Client(backends={"fake": FakeProvider(steps=6),
                                          "fake-b": SecondFakeVendor(steps=9)},
                                poll=PollPolicy(initial=0.01, maximum=0.1))
    else:
        client = unitune.Client(log=lambda msg: print(f"  {msg}", file=sys.stderr))

    jobs = [train_on(client, spec, b) for b in backends]

    print(f"\n{'backend':>8}  {'steps':>5}  {'first loss':>10}  {'last loss':>9}  status")
    for job in jobs:
        rows = [r for r in client.metrics(job.id) if r.train_loss is not None]
        first = f"{rows[0].train_loss:.4f}" if rows else "-"
        last = f"{rows[-1].train_loss:.4f}" if rows else "-"
        print(f"{job.backend:>8}  {len(rows):>5}  {first:>10}  {last:>9}  {job.status}")
    return 0 if all(j.status is unitune.JobStatus.SUCCEEDED for j in jobs) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
