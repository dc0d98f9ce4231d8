#!/usr/bin/env python3
"""Joule's GPU benchmark (joule_cuda_bench) beside PyTorch/cuBLAS (bench/gpu_torch.py), plus the result of the native
checks (joule_cuda_check --json), as one Markdown report. scripts/gpu-check.sh runs it last.

  python3 bench/gpu_compare.py --dir OUT [--joule FILE] [--torch FILE] [--check-json FILE] [--check-log FILE]
                               [--steps FILE] [--out FILE]

--dir: the folder holding torch_gpu_bench.json and Joule's benchmark JSON (any other *.json there with a "results"
list), unless --joule / --torch name them. Both JSONs have the shape
  {"device": name, "results": [{"name", "m", "n", "k", "ms", "tflops"} | {"name", "batch", "ms"}]}.
Rows are matched by name and size; "Joule/PyTorch" is PyTorch's time over Joule's (above 1: Joule is faster).
The targets are issue 8's (on an H200, at 4096-8192): bf16 >= 0.9, tf32 >= 0.8, int8 >= 0.8, MLP step >= 1.0.
Prints the report and writes it to --out (default DIR/gpu_compare.md). Never fails on missing inputs: it says what is
missing instead, so that the report of a broken run still says how far it got.
"""
import argparse
import glob
import json
import os
import re
import sys

TARGETS = {"gemm_bf16": 0.9, "gemm_tf32": 0.8, "gemm_int8": 0.8, "mlp_step": 1.0}
TARGET_MIN_SIZE = 4096  # the GEMM targets apply at 4096-8192
KNOWN_NOT_BENCH = {"torch_gpu_bench.json", "check.json"}


def load(path):
    try:
        with open(path) as f:
            return json.load(f), None
    except FileNotFoundError:
        return None, f"{path}: not found"
    except (OSError, ValueError) as e:
        return None, f"{path}: unreadable ({e})"


def find_joule_json(folder):
    """Joule's benchmark JSON in folder: a *.json other than PyTorch's and the check's, with a results list."""
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        if os.path.basename(path) in KNOWN_NOT_BENCH:
            continue
        doc, _ = load(path)
        if isinstance(doc, dict) and isinstance(doc.get("results"), list):
            return path
    return None


def key(row):
    if "batch" in row and "m" not in row:
        return (row.get("name"), "batch", row.get("batch"))
    return (row.get("name"), row.get("m"), row.get("n"), row.get("k"))


def size_str(k):
    if k[1] == "batch":
        return f"batch {k[2]}"
    m, n, kk = k[1:]
    return f"{m}^3" if m == n == kk else f"{m}x{n}x{kk}"


def fnum(x, digits=3):
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}g}"


def rate(row):
    """TFLOP/s, or TOP/s for the int8 rows (joule_cuda_bench writes those as "tops")."""
    return row.get("tflops", row.get("tops"))


def target_for(k):
    name = k[0] or ""
    if name in TARGETS:
        if name.startswith("gemm_") and (k[1] == "batch" or (k[1] or 0) < TARGET_MIN_SIZE):
            return None
        return TARGETS[name]
    return None


def table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


def bench_section(joule, torch):
    jrows = {key(r): r for r in (joule or {}).get("results", []) if isinstance(r, dict)}
    trows = {key(r): r for r in (torch or {}).get("results", []) if isinstance(r, dict)}
    order = list(jrows) + [k for k in trows if k not in jrows]
    out, met, missed = [], 0, 0
    for k in order:
        j, t = jrows.get(k, {}), trows.get(k, {})
        jms, tms = j.get("ms"), t.get("ms")
        ratio = tms / jms if isinstance(jms, (int, float)) and isinstance(tms, (int, float)) and jms > 0 else None
        tgt = target_for(k)
        verdict = "-"
        if tgt is not None:
            if ratio is None:
                verdict = f">= {tgt} (not measured)"
            elif ratio >= tgt:
                verdict = f">= {tgt}: met"
                met += 1
            else:
                verdict = f">= {tgt}: MISSED"
                missed += 1
        out.append([k[0], size_str(k), fnum(jms) if "error" not in j else "error", fnum(rate(j)),
                    fnum(tms) if "error" not in t else "error", fnum(rate(t)),
                    f"{ratio:.2f}x" if ratio is not None else "-", verdict])
    header = ["row", "size", "Joule ms", "Joule TFLOP/s", "PyTorch ms", "PyTorch TFLOP/s", "Joule/PyTorch", "target"]
    # (int8 rows: TOP/s)
    errors = [f"- Joule {r.get('name')} {size_str(key(r))}: {r['error']}" for r in jrows.values() if "error" in r]
    errors += [f"- PyTorch {r.get('name')} {size_str(key(r))}: {r['error']}" for r in trows.values() if "error" in r]
    return out, header, met, missed, errors


def check_section(check_json, check_log):
    lines = []
    doc, err = load(check_json) if check_json else (None, "no --check-json given")
    if isinstance(doc, dict):
        if doc.get("no_gpu"):
            return [f"joule_cuda_check did not run: no usable GPU ({doc['no_gpu']})"]
        checks = doc.get("checks", [])
        bad = [c for c in checks if c.get("status") != "PASS"]
        lines.append(f"joule_cuda_check: {doc.get('passed', 0)} passed, {doc.get('failed', 0)} failed of {len(checks)} "
                     f"checks in {fnum(doc.get('seconds'))} s on {doc.get('device') or '?'}")
        for c in bad:
            msg = (c.get("message") or "").replace("\n", " ")
            lines.append(f"- {c.get('status')} {c.get('name')}: {msg[:400]}{'...' if len(msg) > 400 else ''}")
        return lines
    # No JSON (the check crashed or was cut short): the log's summary, timeout and FAIL lines.
    try:
        with open(check_log) as f:
            text = f.read()
    except (OSError, TypeError):
        return [f"joule_cuda_check: no result ({err}; no readable check log either)"]
    summary = [l for l in text.splitlines() if l.startswith(("SUMMARY", "joule_cuda_check: no usable GPU"))]
    fails = [l for l in text.splitlines() if re.match(r"^(FAIL|TIMEOUT)\s", l)]
    lines.append("joule_cuda_check (from its log): " + (summary[-1] if summary else "no summary line: it did not finish"))
    lines += [f"- {l.strip()}" for l in fails]
    return lines


def steps_section(steps):
    if not steps:
        return []
    try:
        with open(steps) as f:
            rows = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    except OSError:
        return []
    rows = [(r + ["", "", "", ""])[:4] for r in rows]
    return ["", "Steps of scripts/gpu-check.sh:", "", table(["step", "exit", "seconds", "note"], rows)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=".")
    ap.add_argument("--joule")
    ap.add_argument("--torch")
    ap.add_argument("--check-json")
    ap.add_argument("--check-log")
    ap.add_argument("--steps")
    ap.add_argument("--out")
    args = ap.parse_args()

    joule_path = args.joule or find_joule_json(args.dir)
    torch_path = args.torch or os.path.join(args.dir, "torch_gpu_bench.json")
    joule, jerr = load(joule_path) if joule_path else (None, f"no Joule benchmark JSON in {args.dir}")
    torch, terr = load(torch_path)
    joule = joule if isinstance(joule, dict) else None
    torch = torch if isinstance(torch, dict) else None

    device = (joule or {}).get("device") or (torch or {}).get("device") or "unknown device"
    date = (torch or {}).get("date") or (joule or {}).get("date") or ""
    md = [f"# Joule vs PyTorch on {device}" + (f" ({date})" if date else ""), ""]
    if torch and torch.get("torch"):
        md.append(f"PyTorch {torch['torch']} (CUDA {torch.get('cuda')}); method: {torch.get('method', '?')}.")
    for what, doc, err in (("Joule", joule, jerr), ("PyTorch", torch, terr)):
        if doc is None:
            md.append(f"{what} benchmark: missing ({err}).")
        elif doc.get("error"):
            md.append(f"{what} benchmark: {doc['error']}.")
    rows, header, met, missed, errors = bench_section(joule, torch)
    md.append("")
    if rows:
        md.append(table(header, rows))
        md.append("")
        md.append(f"Targets (issue 8; GEMMs at {TARGET_MIN_SIZE}+): {met} met, {missed} missed. "
                  "Joule/PyTorch above 1 means Joule is faster; int8 rates are TOP/s.")
    else:
        md.append("No benchmark rows to compare.")
    if errors:
        md += ["", "Rows that failed:"] + errors
    md += ["", "## Correctness", ""] + check_section(args.check_json, args.check_log)
    md += steps_section(args.steps)
    text = "\n".join(md) + "\n"
    out = args.out or os.path.join(args.dir, "gpu_compare.md")
    try:
        with open(out, "w") as f:
            f.write(text)
    except OSError as e:
        print(f"gpu_compare: cannot write {out}: {e}", file=sys.stderr)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
