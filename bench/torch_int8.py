#!/usr/bin/python3
"""PyTorch int8 anchors for bench/int8.ts, measured the way ../shared/anchors/torch_bench.py does.

Run with Debian's interpreter and OpenBLAS-OpenMP (bench/int8.ts does this):
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OMP_NUM_THREADS=2 /usr/bin/python3 bench/torch_int8.py
Prints one JSON object (last line): raw int8 GEMM GOP/s (quantized::linear_dynamic: fp32 in/out with
activations quantized on the fly; static quantized::linear: quint8 in/out) and the 4 x Linear(1024)
+ ReLU stack under quantize_dynamic at batch 1 and 256, all on the onednn engine.
"""
import json
import os
import sys
import time

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402


def timed(fn, reps=7, min_time=0.25):
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(min_time / once))
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        out.append((time.perf_counter() - t0) / inner)
    return sorted(out)[len(out) // 2]


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    shapes = json.loads(sys.argv[2]) if len(sys.argv) > 2 else [[256, 1024, 1024], [1024, 1024, 1024], [2048, 2048, 2048], [1, 1024, 1024]]
    torch.set_num_threads(threads)
    engine = "onednn" if "onednn" in torch.backends.quantized.supported_engines else torch.backends.quantized.supported_engines[0]
    torch.backends.quantized.engine = engine
    res = {"torch": torch.__version__, "engine": engine, "threads": threads, "gemm": [], "mlp": []}
    ops = torch.ops.quantized
    torch.manual_seed(0)
    for (m, k, n) in shapes:
        x = torch.randn(m, k)
        w = torch.randn(n, k)
        bias = torch.zeros(n)
        qw = torch.quantize_per_tensor(w, 0.05, 0, torch.qint8)
        packed = ops.linear_prepack(qw, bias)
        qx = torch.quantize_per_tensor(x, 0.05, 128 if engine != "onednn" else 0, torch.quint8)
        flop = 2.0 * m * n * k
        row = {"M": m, "K": k, "N": n}
        with torch.no_grad():
            row["dynamic_s"] = timed(lambda: ops.linear_dynamic(x, packed))
            row["static_s"] = timed(lambda: ops.linear(qx, packed, 0.5, 0 if engine == "onednn" else 128))
            row["fp32_s"] = timed(lambda: torch.nn.functional.linear(x, w, bias))
        for key in ("dynamic", "static", "fp32"):
            row[key + "_gops"] = flop / row[key + "_s"] / 1e9
        res["gemm"].append(row)
    if len(sys.argv) > 3 and sys.argv[3] == "gemm-only":
        print(json.dumps(res))
        return
    from torch.ao.quantization import quantize_dynamic
    layers = []
    for i in range(4):
        layers.append(nn.Linear(1024, 1024))
        if i < 3:
            layers.append(nn.ReLU())
    fp = nn.Sequential(*layers).eval()
    q = quantize_dynamic(fp, {nn.Linear}, dtype=torch.qint8)
    for batch in (1, 256):
        x = torch.randn(batch, 1024)
        with torch.no_grad():
            res["mlp"].append({"batch": batch, "fp32_ms": timed(lambda: fp(x)) * 1e3, "int8_ms": timed(lambda: q(x)) * 1e3,
                               "max_rel_err": ((fp(x) - q(x)).abs().max() / fp(x).abs().max()).item()})
    print(json.dumps(res))


if __name__ == "__main__":
    main()
