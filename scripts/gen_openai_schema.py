#!/usr/bin/env python3
"""Generate sdk/testing/openai_schema_subset.json from OpenAI's published OpenAPI spec.

The subset holds the operations unitune's OpenAI providers and the fake server use (`/files*`
and `/fine_tuning/jobs*`) and every component schema they reference. The fake server
(`unitune.testing.openai_server`) validates every request body against it at request time, and
the tests check responses against it, without shipping the 3 MB spec.

The published spec says OpenAPI 3.1 but still uses 3.0 markings, which a JSON Schema 2020-12
validator misreads. They are rewritten here (and listed in the output's `rewrites`):
  * `nullable: true`            → a type union with "null" (or `anyOf [..., {type: null}]`)
  * boolean `exclusiveMinimum`  → the numeric form (`exclusiveMinimum: <minimum>`), same for max
Two documented relaxations (`relaxations` in the output) cover what the live API is known to send
beyond the published schema: a non-failed job's `error` object with all fields null, and the
status `paused` after POST /fine_tuning/jobs/{id}/pause.

Usage: python scripts/gen_openai_schema.py [--spec PATH] [--out PATH] [--check]
(--check exits 1 when the committed subset differs from a fresh generation.)
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = ROOT.parent / "shared" / "specs" / "openai-openapi.json"
DEFAULT_OUT = ROOT / "sdk" / "testing" / "openai_schema_subset.json"
SOURCE = {
    "file": "openai-openapi.json",
    "repository": "https://github.com/openai/openai-openapi",
    "commit": "f85dbe2",
    "date": "2026-08-21",
    "info_version": "2.3.0",
    "license": "MIT",
}
PATHS = ["/files", "/files/{file_id}", "/files/{file_id}/content", "/fine_tuning/jobs",
         "/fine_tuning/jobs/{fine_tuning_job_id}", "/fine_tuning/jobs/{fine_tuning_job_id}/cancel",
         "/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints",
         "/fine_tuning/jobs/{fine_tuning_job_id}/events",
         "/fine_tuning/jobs/{fine_tuning_job_id}/pause",
         "/fine_tuning/jobs/{fine_tuning_job_id}/resume"]
DROP_KEYS = {"description", "example", "examples", "x-oaiMeta", "x-oaiTypeLabel", "title",
             "x-oaiExpandable", "deprecated", "x-stainless-const", "summary"}


def _refs(node, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for v in node.values():
            _refs(v, found)
    elif isinstance(node, list):
        for v in node:
            _refs(v, found)


def rewrite(node, counts: dict[str, int]):
    """Strip prose and rewrite OpenAPI 3.0 markings into JSON Schema 2020-12."""
    if isinstance(node, list):
        return [rewrite(v, counts) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: rewrite(v, counts) for k, v in node.items() if k not in DROP_KEYS}
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), bool):
            counts[bound + " (boolean)"] = counts.get(bound + " (boolean)", 0) + 1
            if out[bound] and plain in out:
                out[bound] = out.pop(plain)
            else:
                out.pop(bound)
    if "nullable" in out:
        nullable = out.pop("nullable")
        if nullable:
            counts["nullable"] = counts.get("nullable", 0) + 1
            t = out.get("type")
            if isinstance(t, str):
                out["type"] = [t, "null"]
                if "enum" in out and None not in out["enum"]:
                    out["enum"] = [*out["enum"], None]
            elif isinstance(t, list):
                out["type"] = t if "null" in t else [*t, "null"]
            else:
                out = {"anyOf": [out, {"type": "null"}]}
    return out


def relax(schemas: dict) -> list[dict]:
    notes = []
    job = schemas.get("FineTuningJob")
    if job:
        err = job["properties"]["error"]
        err["anyOf"].append({"type": "object", "properties": {
            "code": {"type": "null"}, "message": {"type": "null"}, "param": {"type": "null"}}})
        notes.append({"where": "FineTuningJob.error",
                      "why": "the live API returns an error object with all fields null for jobs "
                             "that did not fail (shared/reference/openai.md)"})
        job["properties"]["status"]["enum"].append("paused")
        notes.append({"where": "FineTuningJob.status",
                      "why": "POST /fine_tuning/jobs/{id}/pause exists, so a paused job reports "
                             "`paused`, which the published enum omits"})
    return notes


def generate(spec_path: Path) -> dict:
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    operations: dict[str, dict] = {}
    wanted: set[str] = set()
    for path in PATHS:
        for method, op in spec["paths"][path].items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            entry: dict = {"operationId": op.get("operationId")}
            body = (op.get("requestBody") or {}).get("content") or {}
            for ctype, media in body.items():
                entry["request"] = {"content_type": ctype, "schema": media.get("schema")}
            ok = op["responses"].get("200") or {}
            for ctype, media in (ok.get("content") or {}).items():
                entry["response"] = {"content_type": ctype, "schema": media.get("schema")}
            params = [{"name": p.get("name"), "in": p.get("in"), "required": p.get("required", False),
                       "schema": p.get("schema")} for p in op.get("parameters", [])]
            if params:
                entry["parameters"] = params
            operations[f"{method.upper()} {path}"] = entry
            _refs(entry, wanted)
    all_schemas = spec["components"]["schemas"]
    done: set[str] = set()
    while wanted - done:
        name = sorted(wanted - done)[0]
        done.add(name)
        _refs(all_schemas[name], wanted)
    counts: dict[str, int] = {}
    schemas = {n: rewrite(copy.deepcopy(all_schemas[n]), counts) for n in sorted(done)}
    operations = rewrite(operations, counts)
    notes = relax(schemas)
    return {
        "source": SOURCE,
        "generated_by": "scripts/gen_openai_schema.py",
        "dialect": "https://json-schema.org/draft/2020-12/schema",
        "rewrites": {k: counts[k] for k in sorted(counts)},
        "relaxations": notes,
        "operations": operations,
        "components": {"schemas": schemas},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    if not args.spec.exists():
        print(f"spec not found: {args.spec} (pass --spec)", file=sys.stderr)
        return 2
    text = json.dumps(generate(args.spec), indent=1, sort_keys=True) + "\n"
    if args.check:
        same = args.out.exists() and args.out.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{args.out} differs from a fresh generation")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
