"""Can a runtime change, not a smaller network, make an offline judge faster? Variants side by side.

    python benchmarks/judge_runtime.py [--judge offline|offline-fast|offline:weights=DIR] [--n 256] [--single 100]
                                       [--variants autocast,precast,bf16,compile,ort-fp32,ort-int8-static,ort-int8-dynamic]

The same network, the same windows of real responses (XSTest, JailbreakBench and HarmBench
generations, as ``judge_speed.py``) and the same length buckets, run by each variant in one process:

- ``autocast`` — the judge's own path (fp32 weights, bf16 matmuls under ``torch.autocast``): the reference.
- ``precast`` — linear weights stored in bf16 once instead of cast on every call (same numbers).
- ``bf16`` — the whole network in bf16, LayerNorm and residuals included.
- ``compile`` — ``torch.compile`` of the autocast path (dynamic shapes; its warm-up is printed).
- ``ort-fp32``, ``ort-int8-static``, ``ort-int8-dynamic`` — the network exported to ONNX and run by ONNX
  Runtime, in fp32, int8 with activation scales calibrated on other responses (static: a verdict
  stays independent of its batch-mates) and int8 with scales per call (dynamic: it does not, unless
  each call holds one sequence: ``ort-int8-dynamic-1``, which runs the windows one by one). Needs
  ``pip install onnx onnxruntime`` (not dependencies of airisk); skipped when they are missing.

``--prompts`` runs XSTest prompts read alone instead (short texts, the prompt-harm head: the content
guard's input check). Prints, per variant: network items/s over the batched windows (tokenising is about 2% of the
judge's time and is the same for all), how far P(violating) moves from the reference (largest and
mean change, verdicts that cross the judge's threshold), and the single-item p50 of the network.
All of it runs on one thread (the main one): see ``judge_thread.py`` for why that matters.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

VARIANTS = ("autocast", "precast", "bf16", "compile", "ort-fp32", "ort-int8-static", "ort-int8-dynamic",
            "ort-int8-dynamic-1")

Seq = tuple[list[int], list[int]]
Forward = Callable[[Any, Any, Any], np.ndarray]  # (ids, types, mask) numpy int64 -> pooled (B, 384)


def buckets(seqs: list[Seq], batch: int = 32) -> Iterator[tuple[list[int], Any, Any, Any]]:
    """The judge's own batching: one length bucket per batch, at most ``batch`` sequences."""
    from airisk.judges import _crossenc as ce

    by_len: dict[int, list[int]] = {}
    for i, s in enumerate(seqs):
        by_len.setdefault(ce.bucket(len(s[0])), []).append(i)
    for n in sorted(by_len):
        idx = by_len[n]
        for s in range(0, len(idx), batch):
            chunk = idx[s : s + batch]
            ids, typ, mask = ce.pad_batch([seqs[i] for i in chunk], n)
            yield chunk, ids.numpy(), typ.numpy(), mask.numpy()


def torch_forward(net: Any, autocast: bool, compiled: bool = False) -> Forward:
    import torch

    def f(ids: Any, typ: Any, mask: Any) -> Any:
        return net.upper(net.lower(ids, typ, mask), mask)

    fn = torch.compile(f, dynamic=True) if compiled else f

    def run(ids: Any, typ: Any, mask: Any) -> np.ndarray:
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with torch.inference_mode(), ctx:
            t = [torch.from_numpy(a) for a in (ids, typ, mask)]
            return fn(*t).float().numpy()

    return run


def ort_forwards(net: Any, calibration: list[Seq], threads: int) -> dict[str, Forward]:
    """ONNX Runtime sessions of the network: fp32, int8 static (calibrated), int8 dynamic."""
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Pooled(torch.nn.Module):
        def __init__(self, n: Any):
            super().__init__()
            self.n = n

        def forward(self, ids: Any, typ: Any, mask: Any) -> Any:
            return self.n.upper(self.n.lower(ids, typ, mask), mask)

    tmp = Path(tempfile.mkdtemp())
    x = torch.randint(1000, 20000, (2, 64))
    torch.onnx.export(Pooled(net).eval(), (x, torch.zeros_like(x), torch.ones_like(x)), str(tmp / "fp32.onnx"),
                      input_names=["ids", "typ", "mask"], output_names=["pooled"],
                      dynamic_axes={k: {0: "b", 1: "t"} for k in ("ids", "typ", "mask")}, opset_version=17, dynamo=False)
    quant_pre_process(str(tmp / "fp32.onnx"), str(tmp / "pre.onnx"), skip_symbolic_shape=True)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"ids": a, "typ": b, "mask": c} for _, a, b, c in buckets(calibration, 16)])

        def get_next(self) -> dict[str, Any] | None:
            return next(self.it, None)

    # activations asymmetric uint8, weights int8 per output channel: ORT's usual CPU recipe (VNNI)
    quantize_static(str(tmp / "pre.onnx"), str(tmp / "s8.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["MatMul", "Gemm"])
    quantize_dynamic(str(tmp / "pre.onnx"), str(tmp / "d8.onnx"), weight_type=QuantType.QInt8, per_channel=True)

    def session(name: str) -> Forward:
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        sess = ort.InferenceSession(str(tmp / name), so, providers=["CPUExecutionProvider"])
        return lambda ids, typ, mask: sess.run(None, {"ids": ids, "typ": typ, "mask": mask})[0]

    dyn = session("d8.onnx")

    def one_by_one(ids: Any, typ: Any, mask: Any) -> np.ndarray:
        rows = []
        for i in range(len(ids)):
            n = int(mask[i].sum())  # the sequence alone, unpadded: its scales see only its own tokens
            rows.append(dyn(ids[i : i + 1, :n], typ[i : i + 1, :n], mask[i : i + 1, :n]))
        return np.concatenate(rows)

    return {"ort-fp32": session("fp32.onnx"), "ort-int8-static": session("s8.onnx"),
            "ort-int8-dynamic": dyn, "ort-int8-dynamic-1": one_by_one}


def forwards(net: Any, wanted: list[str], calibration: list[Seq], threads: int) -> dict[str, Forward]:
    import torch

    out: dict[str, Forward] = {}
    for v in wanted:
        if v == "autocast":
            out[v] = torch_forward(net, autocast=True)
        elif v == "precast":
            pre = copy.deepcopy(net)
            for m in pre.modules():
                if isinstance(m, torch.nn.Linear):
                    m.to(torch.bfloat16)
            out[v] = torch_forward(pre, autocast=True)
        elif v == "bf16":
            out[v] = torch_forward(copy.deepcopy(net).to(torch.bfloat16), autocast=False)
        elif v == "compile":
            out[v] = torch_forward(net, autocast=True, compiled=True)
    if any(v.startswith("ort-") for v in wanted):
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError as e:
            print(f"ORT variants skipped ({e}): pip install onnx onnxruntime")
        else:
            t = time.perf_counter()
            out.update({k: f for k, f in ort_forwards(net, calibration, threads).items() if k in wanted})
            print(f"ONNX export, calibration and quantisation: {time.perf_counter() - t:.1f} s")
    return out


def batched(fwd: Forward, seqs: list[Seq]) -> tuple[float, np.ndarray]:
    """Seconds for one pass over all windows (after one warm-up pass) and the pooled vectors."""
    out = np.zeros((len(seqs), 384), dtype=np.float32)
    for chunk, ids, typ, mask in buckets(seqs):  # warm-up: kernels, shapes, compilation
        out[chunk] = fwd(ids, typ, mask)
    t = time.perf_counter()
    for chunk, ids, typ, mask in buckets(seqs):
        out[chunk] = fwd(ids, typ, mask)
    return time.perf_counter() - t, out


def single_p50(fwd: Forward, items: list[list[Seq]]) -> float:
    """p50 ms of one item's windows per call."""
    def one(seqs: list[Seq]) -> float:
        t = time.perf_counter()
        for _, ids, typ, mask in buckets(seqs):
            fwd(ids, typ, mask)
        return time.perf_counter() - t

    one(items[0])
    return statistics.median(one(s) for s in items) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--judge", default="offline-fast", help="offline, offline-fast or a spec such as offline:weights=DIR")
    ap.add_argument("--n", type=int, default=256, help="items for the batched measurement")
    ap.add_argument("--single", type=int, default=100, help="items for the single-item p50")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--prompts", action="store_true",
                    help="XSTest prompts read alone (the content guard's input check, prompt-harm head) instead of pairs")
    args = ap.parse_args()
    wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
    if bad := [v for v in wanted if v not in VARIANTS]:
        sys.exit(f"--variants: unknown {', '.join(bad)}; choose from {', '.join(VARIANTS)}")

    import torch

    from airisk.judges.factory import make_judge
    from judge_speed import conversations, matmul_rate  # this directory is on sys.path when run as a script

    judge = make_judge(args.judge)
    sc, net, thr = judge.scorer, judge.model.net, judge.threshold
    if args.prompts:
        from airisk.judges import _crossenc as ce
        from airisk.datasets import load_dataset

        texts = list(dict.fromkeys(it.prompt for it in load_dataset("xstest").items))[: 2 * args.n + args.single]
        convs, origin = texts, "XSTest prompts read alone"

        def seqs_of(cs: list[Any]) -> list[Seq]:
            ids = sc.tokens.ids(cs)
            return [ce.pair_ids(ce.clip_intent(a, net.max_len - 2), []) for a in ids]
    else:
        convs, origin = conversations(2 * args.n + args.single)

        def seqs_of(cs: list[Any]) -> list[Seq]:
            return sc._pair_seqs([c.intent or c.prompt for c in cs], [c.response for c in cs])[0]
    test, calib, single = convs[: args.n], convs[args.n : 2 * args.n], convs[2 * args.n :]

    seqs, single_items = seqs_of(test), [seqs_of([c]) for c in single]
    threads = torch.get_num_threads()
    la = os.getloadavg()
    print(f"judge {args.judge} ({judge.fingerprint}, {net.depth} layers, windows up to {net.max_len} tokens, threshold {thr:.2f})")
    print(f"data: {origin}; {len(test)} items in {len(seqs)} windows (mean {statistics.mean(len(s[0]) for s in seqs):.0f} "
          f"tokens); {len(single)} single items; calibration for int8: {len(calib)} other items")
    print(f"machine: {os.cpu_count()} CPUs, {threads} torch threads, large bf16 matmul {matmul_rate('bf16') / 1e9:.0f} GFLOP/s, "
          f"load average {la[0]:.1f} / {la[1]:.1f} / {la[2]:.1f}")

    def harm(pooled: np.ndarray) -> np.ndarray:
        return sc._heads(pooled, "prompt" if args.prompts else "harm")[:, 0]

    ref: np.ndarray | None = None
    print(f"{'variant':<18} {'1st s':>7} {'items/s':>8} {'x ref':>6} {'max dP':>7} {'mean dP':>8} {'flips':>6} "
          f"{'p50 ms':>7}")
    base_rate = None
    for name, fwd in forwards(net, wanted, seqs_of(calib), threads).items():
        t = time.perf_counter()
        fwd(*next(buckets(seqs[:1]))[1:])  # first call: compilation, session start
        setup = time.perf_counter() - t
        secs, pooled = batched(fwd, seqs)
        p = harm(pooled)
        if ref is None:
            ref, base_rate = p, len(test) / secs
        d = np.abs(p - ref)
        flips = int(((p >= thr) != (ref >= thr)).sum())
        rate = len(test) / secs
        print(f"{name:<18} {setup:>7.1f} {rate:>8.1f} {rate / base_rate:>6.2f} {d.max():>7.4f} {d.mean():>8.5f} {flips:>6} "
              f"{single_p50(fwd, single_items):>7.1f}", flush=True)
    print("(items/s: the network alone over the batched windows; dP: change in P(violating) from the first variant; "
          "flips: verdicts crossing the threshold; 1st s: the first call, compilation included)")


if __name__ == "__main__":
    main()
