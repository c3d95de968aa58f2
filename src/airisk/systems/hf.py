"""The ``hf`` system: a local Hugging Face causal language model directory, run with transformers.

Needs the ``hf`` extra (``pip install airisk[hf]``). The model loads once, from disk only
(``local_files_only``), and generation runs in a worker thread, one request at a time, because
a CPU model gains nothing from concurrent calls.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

from airisk import _torch_thread
from airisk.errors import ConfigError
from airisk.systems.base import System
from airisk.types import Completion, Item, Message


def _weights_digest(path: Path) -> str:
    """Hash of config + weight file sizes/names: cheap, and changes whenever the model does."""
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.is_file() and f.suffix in (".json", ".safetensors", ".bin", ".model", ".txt"):
            h.update(f.name.encode())
            h.update(str(f.stat().st_size).encode())
            if f.suffix == ".json":
                h.update(f.read_bytes())
    return h.hexdigest()[:16]


class HFSystem(System):
    """Parameters: ``path`` (model directory), ``max_new_tokens`` (default 128), ``temperature``
    (0 = greedy), ``system_prompt``, ``device`` (default cpu), ``dtype`` (default float32)."""

    name = "hf"

    def __init__(self, path: str | None = None, max_new_tokens: int = 128, temperature: float = 0.0,
                 system_prompt: str | None = None, device: str = "cpu", dtype: str = "float32", seed: int = 0):
        if not path:
            raise ConfigError("hf system: parameter 'path' (a local model directory) is required")
        p = Path(path)
        if not (p / "config.json").exists():
            raise ConfigError(f"hf system: {p} is not a Hugging Face model directory (no config.json)")
        super().__init__(path=str(p), weights=_weights_digest(p), max_new_tokens=int(max_new_tokens),
                         temperature=float(temperature), system_prompt=system_prompt, device=device, dtype=dtype,
                         seed=int(seed))
        self._model = None
        self._tok = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise ConfigError("hf system needs transformers and torch: pip install 'airisk[hf]'") from None
        p = self.params["path"]
        self._tok = AutoTokenizer.from_pretrained(p, local_files_only=True)
        self._model = AutoModelForCausalLM.from_pretrained(
            p, local_files_only=True, dtype=getattr(torch, self.params["dtype"])
        ).to(self.params["device"])
        self._model.eval()

    def _prompt(self, messages: list[Message]) -> str:
        msgs = [m.model_dump(exclude_none=True) for m in messages]
        sp = self.params.get("system_prompt")
        if sp and not any(m["role"] == "system" for m in msgs):
            msgs.insert(0, {"role": "system", "content": sp})
        if getattr(self._tok, "chat_template", None):
            return self._tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        # Models without a chat template get a plain transcript.
        lines = [f"{m['role']}: {m.get('content') or ''}" for m in msgs]
        return "\n".join(lines) + "\nassistant:"

    def _generate_sync(self, messages: list[Message]) -> Completion:
        import torch

        with self._lock:
            if self._model is None:
                self._load()
            t0 = time.perf_counter()
            prompt = self._prompt(messages)
            enc = self._tok(prompt, return_tensors="pt").to(self.params["device"])
            temperature = self.params["temperature"]
            kwargs: dict[str, Any] = {"max_new_tokens": self.params["max_new_tokens"]}
            if temperature > 0:
                torch.manual_seed(self.params["seed"])
                kwargs.update(do_sample=True, temperature=temperature)
            else:
                kwargs.update(do_sample=False)
            if self._tok.pad_token_id is None:
                kwargs["pad_token_id"] = self._tok.eos_token_id
            with torch.no_grad():
                out = self._model.generate(**enc, **kwargs)
            new = out[0, enc["input_ids"].shape[1]:]
            text = self._tok.decode(new, skip_special_tokens=True)
            return Completion(text=text, latency_s=time.perf_counter() - t0, prompt_tokens=int(enc["input_ids"].shape[1]),
                              completion_tokens=int(new.shape[0]))

    async def generate(self, messages: list[Message], *, item: Item | None = None) -> Completion:
        # on the process's one torch thread, beside the offline judges (see airisk._torch_thread)
        return await _torch_thread.arun(self._generate_sync, messages)

    async def preflight(self) -> None:
        await _torch_thread.arun(self._load_locked)

    def _load_locked(self) -> None:
        with self._lock:
            if self._model is None:
                self._load()
