#!/usr/bin/env python3
"""The PyTorch (cuBLAS) side of the GPU benchmark: what joule_cuda_bench is compared with (bench/gpu_compare.py).

Times, on cuda:0, with CUDA events:
  gemm_fp32  torch.matmul, float32, allow_tf32 = False (exact fp32)
  gemm_tf32  torch.matmul, float32, allow_tf32 = True
  gemm_bf16  torch.matmul, bfloat16 inputs and output (fp32 accumulation inside cuBLAS)
  gemm_int8  torch._int_mm, int8 inputs, int32 output
at M = N = K in {1024, 2048, 4096, 8192}, and
  mlp_step       one PyTorch eager training step of an MLP 784-4096-4096-10 (Linear+ReLU x2, Linear), batch 1024,
                 cross_entropy, backward, SGD(lr 0.01, momentum 0.9), float32 with allow_tf32 = False
  mlp_step_tf32  the same with allow_tf32 = True

Method: joule_cuda_bench's (cuda/tools/bench.cpp), so that the two compare like with like: inputs uniform in [-1, 1)
(int8: [-127, 127]; never zeros, which run faster than real data), results preallocated; 3 warm-up calls (module
load, cuBLAS handles and heuristics stay out of the numbers); then 10 calls, each bracketed by CUDA events; the figure
is the median of the 10.

Writes {"device", "torch", "cuda", "date", "method", "results": [{"name", "m", "n", "k", "ms", "tflops"} |
{"name", "batch", "ms"}]} (int8 rows also carry "tops") to OUT/torch_gpu_bench.json (OUT: the first argument, default "."), the shape that
joule_cuda_bench writes. Without a CUDA device it says so and exits with status 2 (as joule_cuda_check does).
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import time

SIZES = (1024, 2048, 4096, 8192)
WARMUP = 3
REPS = 10
DEVICE = "cuda"  # a test on a machine without a GPU swaps in "cpu" (and fake events)


def write(path, doc):
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)


def time_ms(torch, fn, reps=REPS):
    """Median milliseconds of fn() over `reps` calls, each bracketed by CUDA events, after WARMUP calls."""
    for _ in range(WARMUP):
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = []
    for _ in range(reps):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        samples.append(start.elapsed_time(stop))
    return statistics.median(samples)


def gemm_rows(torch, log):
    rows = []
    for name in ("gemm_fp32", "gemm_tf32", "gemm_bf16", "gemm_int8"):
        for n in SIZES:
            try:
                torch.backends.cuda.matmul.allow_tf32 = name == "gemm_tf32"
                gen = torch.Generator(device=DEVICE).manual_seed(n)
                if name == "gemm_int8":
                    a, b = (torch.randint(-127, 128, (n, n), device=DEVICE, dtype=torch.int8, generator=gen)
                            for _ in range(2))
                    op = torch._int_mm
                else:
                    dtype = torch.bfloat16 if name == "gemm_bf16" else torch.float32
                    a, b = ((torch.rand(n, n, device=DEVICE, generator=gen) * 2 - 1).to(dtype) for _ in range(2))
                    op = torch.matmul
                c = op(a, b)  # preallocated result: time the product, not the allocator

                def fn(op=op, a=a, b=b, c=c):
                    op(a, b, out=c)

                try:
                    fn()
                except (TypeError, RuntimeError):  # no out= form in this PyTorch: let it allocate
                    def fn(op=op, a=a, b=b):
                        op(a, b)
                ms = time_ms(torch, fn)
                tflops = 2.0 * n * n * n / (ms * 1e-3) / 1e12
                row = {"name": name, "m": n, "n": n, "k": n, "ms": round(ms, 5), "tflops": round(tflops, 2)}
                if name == "gemm_int8":
                    row["tops"] = row["tflops"]  # integer operations: joule_cuda_bench's key for int8 rows
                rows.append(row)
                log(f"{name:10s} {n:5d}^3  {ms:9.4f} ms  {tflops:8.1f} TFLOP/s")
                del a, b, c, fn
            except Exception as e:  # one failing row (an unsupported op, memory) must not lose the others
                rows.append({"name": name, "m": n, "n": n, "k": n, "error": f"{type(e).__name__}: {e}"})
                log(f"{name:10s} {n:5d}^3  failed: {type(e).__name__}: {e}")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.cuda.empty_cache()
    return rows


def mlp_rows(torch, log, batch=1024):
    import torch.nn as nn
    import torch.nn.functional as F

    rows = []
    for name, tf32 in (("mlp_step", False), ("mlp_step_tf32", True)):
        try:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.manual_seed(0)
            model = nn.Sequential(nn.Linear(784, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(),
                                  nn.Linear(4096, 10)).to(DEVICE)
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            gen = torch.Generator(device=DEVICE).manual_seed(1)
            x = torch.rand(batch, 784, device=DEVICE, generator=gen) * 2 - 1
            y = torch.randint(0, 10, (batch,), device=DEVICE, generator=gen)

            def step():
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            ms = time_ms(torch, step)
            rows.append({"name": name, "batch": batch, "ms": round(ms, 5)})
            log(f"{name:14s} batch {batch}  {ms:9.4f} ms")
            del model, opt, x, y
        except Exception as e:
            rows.append({"name": name, "batch": batch, "error": f"{type(e).__name__}: {e}"})
            log(f"{name:14s} failed: {type(e).__name__}: {e}")
    torch.backends.cuda.matmul.allow_tf32 = False
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?", default=".", help="folder for torch_gpu_bench.json")
    ap.add_argument("--quick", action="store_true", help="only the 1024 and 2048 sizes (a smoke test)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "torch_gpu_bench.json")

    def log(line):
        print("gpu_torch: " + line, flush=True)

    doc = {"device": None, "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "method": f"CUDA events around each call; median of {REPS} calls after {WARMUP} warm-ups "
                     "(joule_cuda_bench's method)", "results": []}
    try:
        import torch
    except Exception as e:
        doc["error"] = f"PyTorch cannot be imported: {e}"
        write(path, doc)
        log(doc["error"])
        return 2
    doc["torch"] = torch.__version__
    doc["cuda"] = torch.version.cuda
    if not torch.cuda.is_available():
        doc["error"] = f"no CUDA device (torch {torch.__version__}, built with CUDA {torch.version.cuda}): nothing timed"
        write(path, doc)
        log(doc["error"])
        return 2
    if args.quick:
        global SIZES
        SIZES = SIZES[:2]
    props = torch.cuda.get_device_properties(0)
    doc["device"] = torch.cuda.get_device_name(0)
    doc["capability"] = f"{props.major}.{props.minor}"
    log(f"{doc['device']} (compute capability {doc['capability']}, {props.multi_processor_count} SMs), "
        f"torch {torch.__version__}, CUDA {torch.version.cuda}")
    t0 = time.time()
    doc["results"] = gemm_rows(torch, log)
    write(path, doc)  # keep the GEMM rows even if the MLP part is cut short
    doc["results"] += mlp_rows(torch, log)
    write(path, doc)
    log(f"wrote {path} in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
