"""The embedded default model `unitune/tiny-chat`, built offline and deterministically.

A byte-level BPE tokenizer trained on a small built-in bilingual (English/French) corpus, a ChatML
chat template whose assistant turn — including the `<|im_end|>` end-of-turn token — sits inside
`{% generation %}` (so `assistant_only_loss` works and the model learns to stop), and a small
Llama-architecture model initialised from a fixed seed. Built on first use and cached under
`unitune_home()/models/tiny-chat`. Its weights are random: it learns format, not facts.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

TINY_ID = "unitune/tiny-chat"
VERSION = 1  # bump when the recipe below changes; the cache is keyed on it
SEED = 1234

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- generation -%}"
    "{{- (message['content'] if message['content'] is string else '') + '<|im_end|>' -}}"
    "{%- endgeneration -%}"
    "{{- '\\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + "
    "(message['content'] if message['content'] is string else '') + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_EN = [
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France? The capital of France is Paris.",
    "Please summarise the following text in one sentence.",
    "Machine learning models learn patterns from data.",
    "Fine-tuning adapts a pretrained model to a new task with a small dataset.",
    "The weather today is sunny with a light breeze from the west.",
    "Translate this sentence into French, please.",
    "I would like a cup of coffee and a slice of apple pie.",
    "Water boils at one hundred degrees Celsius at sea level.",
    "A low-rank adapter adds two small matrices next to each frozen weight.",
    "Can you help me write a polite email to my manager?",
    "Sure! Here is a short answer: yes, that works.",
    "Numbers: one two three four five six seven eight nine ten 0 1 2 3 4 5 6 7 8 9.",
    "You are a helpful assistant that answers briefly and accurately.",
    "The train leaves at half past seven from platform four.",
    "Thank you very much for your help; have a great day!",
    "def add(a, b):\n    return a + b\n",
    "{\"name\": \"unitune\", \"version\": 1, \"ok\": true}",
]
_FR = [
    "Le renard brun rapide saute par-dessus le chien paresseux.",
    "Quelle est la capitale de la France ? La capitale de la France est Paris.",
    "Veuillez résumer le texte suivant en une phrase.",
    "Les modèles d'apprentissage automatique apprennent des motifs à partir des données.",
    "L'ajustement fin adapte un modèle pré-entraîné à une nouvelle tâche.",
    "Il fait beau aujourd'hui avec une légère brise venant de l'ouest.",
    "Traduisez cette phrase en anglais, s'il vous plaît.",
    "Je voudrais une tasse de café et une part de tarte aux pommes.",
    "L'eau bout à cent degrés Celsius au niveau de la mer.",
    "Pouvez-vous m'aider à écrire un courriel poli à mon responsable ?",
    "Bien sûr ! Voici une réponse courte : oui, cela fonctionne.",
    "Vous êtes un assistant serviable qui répond brièvement et avec précision.",
    "Le train part à sept heures et demie du quai numéro quatre.",
    "Merci beaucoup pour votre aide ; passez une excellente journée !",
    "Élève, garçon, où, à, ç, ê, î, ô, û, ë, ï, ü — les accents comptent.",
]


def corpus() -> list[str]:
    """The built-in bilingual training corpus for the BPE (chat-framed and plain)."""
    lines: list[str] = []
    for i, text in enumerate(_EN + _FR):
        lines.append(text)
        lines.append(f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"
                     f"{(_EN + _FR)[(i + 7) % len(_EN + _FR)]}<|im_end|>\n")
    return lines


def tiny_config_kwargs(vocab_size: int) -> dict:
    return dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                rms_norm_eps=1e-6, tie_word_embeddings=False, rope_theta=10000.0)


def build_raw_tokenizer(vocab_size: int = 512):
    """Train the byte-level BPE (a `tokenizers.Tokenizer`; needs neither torch nor transformers,
    so token counting can use the exact tiny-chat tokenizer before the model is built)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus(), trainer=trainer)
    return tok


def build_tokenizer(vocab_size: int = 512):
    """The BPE wrapped as a transformers fast tokenizer with the ChatML template."""
    from transformers import PreTrainedTokenizerFast

    tok = build_raw_tokenizer(vocab_size)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", bos_token=None,
                                   model_max_length=1024)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(tokenizer, *, seed: int = SEED, **overrides):
    """A small Llama, weights drawn from a fixed seed (identical on every run)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    kwargs = tiny_config_kwargs(len(tokenizer))
    kwargs.update(overrides)
    config = LlamaConfig(**kwargs, bos_token_id=None,
                         eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
                         pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"))
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(state)
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    return model


def cache_dir() -> Path:
    from ..paths import unitune_home

    return unitune_home() / "models" / "tiny-chat"


def ensure_tiny_model(dest: Path | None = None) -> Path:
    """Return the directory of `unitune/tiny-chat`, building it there first if needed.

    The build goes to a temporary sibling and is renamed into place, so concurrent workers never
    see half a model.
    """
    dest = Path(dest) if dest else cache_dir()
    marker = dest / "unitune-tiny.json"
    if marker.exists():
        try:
            if json.loads(marker.read_text()).get("version") == VERSION:
                return dest
        except (OSError, ValueError):
            pass
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-build-", dir=dest.parent))
    try:
        tok = build_tokenizer()
        model = build_model(tok)
        tok.save_pretrained(tmp)
        model.save_pretrained(tmp)
        n_params = sum(p.numel() for p in model.parameters())
        (tmp / "unitune-tiny.json").write_text(json.dumps({
            "id": TINY_ID, "version": VERSION, "seed": SEED, "parameters": n_params,
            "note": "random weights: learns format and stop tokens, not facts"}))
        if dest.exists():
            shutil.rmtree(dest, ignore_errors=True)
        try:
            os.rename(tmp, dest)
        except OSError:  # another process won the race; its copy is identical
            if not (dest / "unitune-tiny.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def weights_digest(model_dir: Path) -> str:
    """sha256 of the safetensors file (tests use it to check determinism)."""
    h = hashlib.sha256()
    h.update((Path(model_dir) / "model.safetensors").read_bytes())
    return h.hexdigest()
