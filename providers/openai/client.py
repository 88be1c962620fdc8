"""Options and SDK clients: the backend's options (spec, constructor, `UNITUNE_<BACKEND>_*`
variables), the non-secret connection settings kept in a RemoteRef, the credentials, and one
cached `openai.OpenAI` client per connection. The SDK is imported only when a client is built."""
from __future__ import annotations

import hashlib
import os
from typing import Any

from unitune.backends import import_sdk
from unitune.errors import AuthError
from unitune.job import RemoteRef
from unitune.spec import JobSpec


class ClientMixin:
    """Options and clients for `OpenAIBackend` (the Azure backend overrides `_conn`,
    `_client_kwargs` and `_make_client`)."""

    def _opts(self, spec: JobSpec | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        opts = dict(self._options)
        if spec is not None:
            opts.update(spec.options(self.name))
        else:
            prefix = f"UNITUNE_{self.name.upper()}_"
            for key, value in os.environ.items():
                if key.startswith(prefix) and len(key) > len(prefix):
                    opts[key[len(prefix):].lower()] = value
        opts.update(extra or {})
        return opts

    def _conn(self, opts: dict[str, Any]) -> dict[str, Any]:
        """Non-secret connection settings; stored in the RemoteRef so `get` reaches the same place."""
        conn = {"base_url": opts.get("base_url") or os.environ.get("OPENAI_BASE_URL") or None,
                "organization": opts.get("organization") or os.environ.get("OPENAI_ORG_ID") or None,
                "project": opts.get("project") or os.environ.get("OPENAI_PROJECT_ID") or None}
        if opts.get("api_key_env"):
            conn["api_key_env"] = opts["api_key_env"]
        return {k: v for k, v in conn.items() if v}

    def _secrets(self, conn: dict[str, Any] | None = None) -> list[str]:
        names = [self.key_env, "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN",
                 f"UNITUNE_{self.name.upper()}_API_KEY"]
        if conn and conn.get("api_key_env"):
            names.append(conn["api_key_env"])
        vals = [os.environ.get(n) for n in names]
        vals.append(self._options.get("api_key"))
        return [v for v in vals if v]

    def _client_kwargs(self, conn: dict[str, Any], opts: dict[str, Any]) -> dict[str, Any]:
        key = (os.environ.get(conn["api_key_env"]) if conn.get("api_key_env") else None) \
            or opts.get("api_key") or os.environ.get(self.key_env)
        if not key:
            raise AuthError(f"no OpenAI API key: set {conn.get('api_key_env') or self.key_env}",
                            backend=self.name,
                            hint="export OPENAI_API_KEY=… (or set backend_options.openai.api_key_env "
                                 "to the name of the variable holding it)")
        kw: dict[str, Any] = {"api_key": key}
        for src, dst in (("base_url", "base_url"), ("organization", "organization"),
                         ("project", "project")):
            if conn.get(src):
                kw[dst] = conn[src]
        return kw

    def _client(self, conn: dict[str, Any], opts: dict[str, Any] | None = None) -> Any:
        if self._injected is not None:
            return self._injected
        opts = opts if opts is not None else self._opts()
        kw = self._client_kwargs(conn, opts)
        cred = kw.get("api_key") or kw.get("azure_ad_token") or id(kw.get("azure_ad_token_provider"))
        sig = (tuple(sorted((k, str(v)) for k, v in conn.items())), str(opts.get("timeout")),
               str(opts.get("max_retries")), hashlib.sha256(str(cred).encode()).hexdigest()[:12])
        if sig not in self._clients:
            import_sdk("openai", "openai")
            if opts.get("timeout") is not None:
                kw["timeout"] = float(opts["timeout"])
            kw["max_retries"] = int(opts.get("max_retries", 3))
            try:
                self._clients[sig] = self._make_client(kw)
            except Exception as exc:  # the SDK's own "missing credentials" errors
                raise self._map(exc, "create the client", conn) from exc
        return self._clients[sig]

    def _make_client(self, kw: dict[str, Any]) -> Any:
        import openai

        return openai.OpenAI(**kw)

    def _ref_client(self, ref: RemoteRef) -> Any:
        conn = dict(ref.extra.get("conn") or {})
        return self._client(conn, self._opts()), conn

    def _ref(self, job_id: str, conn: dict[str, Any]) -> RemoteRef:
        return RemoteRef(backend=self.name, remote_id=job_id, extra={"conn": conn})
