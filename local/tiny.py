"""The embedded default model `unitune/tiny-chat`, built offline and deterministically.

A byte-level BPE tokenizer trained on a small built-in bilingual (English/French) corpus, a ChatML
chat template whose assistant turn — including the `<|im_end|>` end-of-turn token — sits inside
`{% generation %}` (so `assistant_only_loss` works and the model learns to stop), and a small
Llama-architecture model initialised from a fixed seed, then briefly pre-trained (all weights,
`PRETRAIN_STEPS` steps, ~12 s on one CPU core) on the bundled English / French / Chinese
sentences below, plain and chat-framed. Built on first use and cached under
`unitune_home()/models/tiny-chat`.

Why pre-train: with random weights the output layer cannot put much probability on any token
(its rows are tiny and the final norm bounds the hidden state), so a LoRA adapter — which leaves
the embeddings and the output layer frozen — cannot lower the loss much below ln(vocab), and the
tuned model answers "在的在的…". After the short pre-training those layers know the byte
statistics of the three languages, and a LoRA run visibly learns a task (`unitune demo`). The
bundled text is general (weather, travel, study…), none of it customer service, so what the
demo's model shows afterwards was learned from the demo's data.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

TINY_ID = "unitune/tiny-chat"
VERSION = 2  # bump when the recipe below changes; the cache is keyed on it
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

_ZH = [
    "今天天气很好，阳光明媚，适合出去散步。",
    "明天可能会下雨，出门记得带伞。",
    "春天来了，公园里的花都开了。",
    "秋天的北京天高气爽，是旅游的好季节。",
    "冬天很冷，晚上要多穿一件衣服。",
    "我每天早上七点起床，先喝一杯水再吃早饭。",
    "他喜欢在周末去图书馆看书。",
    "这家餐厅的饺子很好吃，价格也不贵。",
    "妈妈做的红烧肉是我最喜欢的菜。",
    "我们下午三点在学校门口见面吧。",
    "学习一门新的语言需要耐心和坚持。",
    "请把这句话翻译成英文。",
    "机器学习模型从数据中学习规律。",
    "微调可以让预训练模型适应新的任务。",
    "这台电脑运行速度很快，屏幕也很清楚。",
    "火车早上八点从北京南站出发，中午到达上海。",
    "飞机晚点了一个小时，我们在机场等了很久。",
    "他在一家科技公司做软件工程师。",
    "会议改到下周二上午十点，请大家准时参加。",
    "请问附近有没有地铁站？",
    "往前走两百米，然后向左拐就到了。",
    "这本书讲的是一个年轻人离开家乡去大城市打拼的故事。",
    "多喝水、早睡早起对身体有好处。",
    "医生说他需要休息几天，不要太累。",
    "孩子们在操场上踢足球，玩得很开心。",
    "我想买一双舒服的鞋子，适合每天走路。",
    "超市里的水果很新鲜，苹果和香蕉都在打折。",
    "这个周末我们打算去爬山，顺便拍一些照片。",
    "谢谢你的帮助，祝你工作顺利！",
    "不好意思，我没听清楚，你能再说一遍吗？",
    "长城是中国最有名的古代建筑之一。",
    "熊猫喜欢吃竹子，主要生活在四川。",
    "一年有十二个月，一周有七天。",
    "水在一百摄氏度的时候会沸腾。",
    "你好，请问有什么可以帮您？",
    "好的，我明白了，我马上去办。",
    "请在表格里填写您的姓名、电话和地址。",
    "这个问题有点复杂，我们需要再讨论一下。",
    "他每天坐公交车上班，路上大约需要四十分钟。",
    "晚饭后我们一起去河边散步，看看夜景。",
    "新年快到了，街上到处都挂着红灯笼。",
    "这部电影的故事很感人，很多观众都哭了。",
    "我的手机没电了，可以借一下你的充电器吗？",
    "请保持安静，图书馆里不能大声说话。",
    "今天的作业是写一篇关于家乡的作文。",
    "数字：一二三四五六七八九十，0 1 2 3 4 5 6 7 8 9。",
    "他把钥匙忘在家里了，只好等家人回来开门。",
    "周一到周五上班，周六和周日休息。",
    "这条路晚上车很多，过马路要小心。",
    "你可以先试一下，如果不合适再换。",
]

PRETRAIN_STEPS = 240  # full-weight steps at build time (batch 16 x 128 tokens)
PRETRAIN_LR = 3e-3
PRETRAIN_SEQ = 128
PRETRAIN_BATCH = 16


def corpus() -> list[str]:
    """The built-in bilingual training corpus for the BPE (chat-framed and plain)."""
    lines: list[str] = []
    for i, text in enumerate(_EN + _FR):
        lines.append(text)
        lines.append(f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"
                     f"{(_EN + _FR)[(i + 7) % len(_EN + _FR)]}<|im_end|>\n")
    return lines


def pretrain_corpus() -> list[str]:
    """The build-time pre-training text: every sentence plain, then chat-framed pairs drawn
    with a fixed seed (so the model also learns the turn structure and to stop)."""
    import random

    texts = _EN + _FR + _ZH
    rng = random.Random(SEED)
    docs = list(texts)
    for _ in range(400):
        q, a = rng.choice(texts), rng.choice(texts)
        docs.append(f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>\n")
    return docs


def pretrain(model, tokenizer, *, steps: int = PRETRAIN_STEPS, seed: int = SEED) -> list[float]:
    """Train every weight of `model` on `pretrain_corpus()` (deterministic: fixed seeds, one
    data order); returns the loss of each step."""
    import torch

    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    stream: list[int] = []
    for doc in pretrain_corpus():
        stream += tokenizer(doc, add_special_tokens=False)["input_ids"] + [eot]
    rows = len(stream) // PRETRAIN_SEQ
    data = torch.tensor(stream[:rows * PRETRAIN_SEQ]).view(rows, PRETRAIN_SEQ)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=PRETRAIN_LR, weight_decay=0.0)
    warm = max(1, steps // 12)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.05, 1 - s / steps))
    losses = []
    model.train()
    for _ in range(steps):
        batch = data[torch.randint(0, rows, (PRETRAIN_BATCH,), generator=gen)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    model.eval()
    return losses


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


def _pretrain_seeded(model, tok) -> list[float]:
    """`pretrain` with torch's global RNG state restored afterwards."""
    import torch

    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    try:
        torch.manual_seed(SEED)
        # one thread: these matrices are tiny, and on a busy machine OpenMP threads spin-wait
        # (measured: 30 steps took 1.5 s on one thread, 26 s on two, on a loaded 2-core box);
        # it also makes the result independent of the core count
        torch.set_num_threads(1)
        return pretrain(model, tok)
    finally:
        torch.set_num_threads(threads)
        torch.random.set_rng_state(state)


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
        losses = _pretrain_seeded(model, tok)
        tok.save_pretrained(tmp)
        model.save_pretrained(tmp)
        n_params = sum(p.numel() for p in model.parameters())
        (tmp / "unitune-tiny.json").write_text(json.dumps({
            "id": TINY_ID, "version": VERSION, "seed": SEED, "parameters": n_params,
            "pretrain": {"steps": len(losses), "first_loss": round(losses[0], 4),
                         "last_loss": round(losses[-1], 4)},
            "note": "pre-trained a few seconds on bundled general EN/FR/ZH text: knows byte "
                    "statistics and the chat turns, no facts"}))
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
