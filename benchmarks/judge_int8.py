"""Would ONNX Runtime int8 make the offline judge faster, and what would it change?

    pip install onnx            # not a dependency of airisk: only this experiment needs it
    python benchmarks/judge_int8.py

Exports the shipped network (embeddings + six layers + pooling) to ONNX, quantises it dynamically to
int8 (per tensor and per output channel), and scores the held-out pairs of the human- and LLM-labelled
sets (fold 0, as `airisk judge validate --split val`) with each backend, in one run:

- torch bf16 and fp32: the judge's own path (length buckets, batches of 32).
- ORT int8: one sequence at a time. Dynamic quantisation computes each activation's scale over the
  whole input tensor, so in a batch a verdict would depend on its batch-mates (and on padding); one
  sequence per call keeps verdicts batch-independent, and at these lengths batching gained ORT little.

Prints seconds, sequences/s, held-out accuracy per set and how many verdicts differ from fp32.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:
        sys.exit(f"this experiment needs onnx and onnxruntime ({e}); pip install onnx onnxruntime")
    import torch

    from airisk.judges import _crossenc as ce
    from airisk.judges.offline import WEIGHTS_DIR, Scorer
    from airisk.judges.train import build_examples
    from airisk.taxonomy import hazard_codes

    threads = int(os.environ.get("THREADS", "2"))
    torch.set_num_threads(threads)
    loaded = ce.load(WEIGHTS_DIR)

    class Pooled(torch.nn.Module):
        def __init__(self, net: ce.JudgeNet):
            super().__init__()
            self.net = net

        def forward(self, ids: torch.Tensor, typ: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return self.net.upper(self.net.lower(ids, typ, mask), mask)

    tmp = Path(tempfile.mkdtemp())
    x = torch.randint(1000, 20000, (2, 64))
    axes = {k: {0: "b", 1: "t"} for k in ("ids", "typ", "mask")}
    torch.onnx.export(Pooled(loaded.net).eval(), (x, torch.zeros_like(x), torch.ones_like(x)), str(tmp / "fp32.onnx"),
                      input_names=["ids", "typ", "mask"], output_names=["pooled"], dynamic_axes=axes, opset_version=17,
                      dynamo=False)
    quantize_dynamic(str(tmp / "fp32.onnx"), str(tmp / "int8.onnx"), weight_type=QuantType.QInt8)
    quantize_dynamic(str(tmp / "fp32.onnx"), str(tmp / "int8c.onnx"), weight_type=QuantType.QInt8, per_channel=True)

    rows = [r for r in build_examples(list(hazard_codes()), texts=False, refusals=False)
            if r.split == "val" and not r.augmented and r.harm is not None]
    scorer = Scorer(loaded, precision="fp32")
    seqs, owner_l = scorer._pair_seqs([r.intent for r in rows], [r.response for r in rows])
    owner = np.asarray(owner_l)
    y = np.array([r.harm for r in rows]) >= 0.5
    src = np.array([r.source for r in rows])

    def verdicts(pooled: np.ndarray) -> np.ndarray:
        p = scorer._heads(pooled, "harm")[:, 0]
        out = np.zeros(len(rows))
        np.maximum.at(out, owner, p)
        return out >= 0.5

    def torch_run(precision: str) -> np.ndarray:
        scorer.precision = precision
        return scorer._run(seqs)

    def ort_run(name: str) -> np.ndarray:
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        sess = ort.InferenceSession(str(tmp / name), so, providers=["CPUExecutionProvider"])
        out = np.zeros((len(seqs), ce.HIDDEN), dtype=np.float32)
        for i, (ids, typ) in enumerate(seqs):
            feed = {"ids": np.array([ids], np.int64), "typ": np.array([typ], np.int64), "mask": np.ones((1, len(ids)), np.int64)}
            out[i] = sess.run(None, feed)[0][0]
        return out

    backends = {"torch fp32 (reference)": lambda: torch_run("fp32"), "torch bf16 (shipped)": lambda: torch_run("bf16"),
                "ORT int8 per tensor": lambda: ort_run("int8.onnx"), "ORT int8 per channel": lambda: ort_run("int8c.onnx")}
    results: dict[str, tuple[float, np.ndarray]] = {}
    for name, fn in backends.items():
        if name.startswith("torch"):  # warm-up of torch's kernels for this precision, not timed
            scorer.precision = "bf16" if "bf16" in name else "fp32"
            scorer._run(seqs[:16])
        t = time.perf_counter()
        pooled = fn()
        results[name] = (time.perf_counter() - t, verdicts(pooled))
    ref = results["torch fp32 (reference)"][1]
    sources = sorted(set(src))
    print(f"{len(rows)} held-out pairs, {len(seqs)} windows, {threads} threads")
    print(f"{'backend':<24} {'seconds':>8} {'windows/s':>10} " + " ".join(f"{s[:18]:>30}" for s in sources))
    for name, (secs, v) in results.items():
        cells = []
        for s in sources:
            m = src == s
            cells.append(f"acc {(v[m] == y[m]).mean():.3f}, {int((v[m] != ref[m]).sum())} flipped/{int(m.sum())}")
        print(f"{name:<24} {secs:>8.1f} {len(seqs) / secs:>10.1f} " + " ".join(f"{c:>30}" for c in cells))


if __name__ == "__main__":
    main()
