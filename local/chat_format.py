"""What a model's chat template renders to, found by rendering it (never by guessing its name).

Serving and Ollama need the template in other forms: a chat-format name for llama-cpp-python,
a Go template for an Ollama `Modelfile`, stop strings. `pieces(template)` renders the Jinja
template (sandboxed, as transformers does) with probe messages and reads off each role's prefix
and suffix and the generation prompt; it accepts a template only when those pieces reproduce a
whole multi-turn conversation exactly (templates that fold the system prompt into the first user
turn, or change with position, return None and are left to the engine's own handling).
"""
from __future__ import annotations

from dataclasses import dataclass

_PROBE = "\u2063unitune-probe\u2063"
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Pieces:
    """Per-role prefix/suffix around a message's content, and the generation prompt."""

    prefix: dict[str, str]
    suffix: dict[str, str]
    generation: str

    @property
    def family(self) -> str | None:
        """A well-known format name (as llama-cpp-python calls it), when it is one exactly."""
        chatml = all(self.prefix.get(r) == f"<|im_start|>{r}\n" and
                     self.suffix.get(r) == "<|im_end|>\n" for r in ("user", "assistant"))
        if chatml and self.generation == "<|im_start|>assistant\n":
            return "chatml"
        return None

    def stops(self, eos: str | None = None) -> list[str]:
        """Strings that end an assistant turn: its suffix's marker and the EOS token."""
        out = []
        marker = self.suffix.get("assistant", "").strip()
        for s in (marker, eos):
            if s and s not in out:
                out.append(s)
        return out


def _render(template: str, messages: list[dict], generation: bool, bos: str, eos: str) -> str:
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(messages=messages, add_generation_prompt=generation,
                                            bos_token=bos, eos_token=eos)


def pieces(template: str | None, *, bos: str = "", eos: str = "") -> Pieces | None:
    """The template's pieces, or None when it is not a plain per-message template."""
    if not template:
        return None
    from .gguf import strip_generation_tags

    template = strip_generation_tags(template)
    prefix: dict[str, str] = {}
    suffix: dict[str, str] = {}
    try:
        for role in ROLES:
            try:
                text = _render(template, [{"role": role, "content": _PROBE}], False, bos, eos)
            except Exception:  # noqa: BLE001 - e.g. "conversation must start with user"
                if role == "system":
                    continue
                return None
            if text.count(_PROBE) != 1:
                return None
            prefix[role], suffix[role] = text.split(_PROBE)
        user = [{"role": "user", "content": "a"}]
        plain = _render(template, user, False, bos, eos)
        with_gen = _render(template, user, True, bos, eos)
        if not with_gen.startswith(plain):
            return None
        generation = with_gen[len(plain):]
        conv = ([{"role": "system", "content": "s"}] if "system" in prefix else []) + [
            {"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "u2"}]
        expected = "".join(prefix[m["role"]] + m["content"] + suffix[m["role"]] for m in conv)
        if _render(template, conv, True, bos, eos) != expected + generation:
            return None
    except Exception:  # noqa: BLE001 - a template we cannot render is one we do not translate
        return None
    return Pieces(prefix=prefix, suffix=suffix, generation=generation)


def go_template(p: Pieces) -> str | None:
    """The pieces as an Ollama (Go text/template) TEMPLATE; None if a piece cannot be literal."""
    literal = [*p.prefix.values(), *p.suffix.values(), p.generation]
    if any("{{" in s or "}}" in s or '"""' in s for s in literal):
        return None
    branches = []
    for i, role in enumerate(r for r in ROLES if r in p.prefix):
        keyword = "if" if i == 0 else "else if"
        branches.append(f'{{{{ {keyword} eq .Role "{role}" }}}}{p.prefix[role]}'
                        f'{{{{ .Content }}}}{p.suffix[role]}')
    return "{{ range .Messages }}" + "".join(branches) + "{{ end }}{{ end }}" + p.generation
