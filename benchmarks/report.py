"""Turn a pytest-benchmark JSON file into the BENCHMARKS.md table: rates and C/reference ratios."""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def main(path: str) -> None:
    doc = json.load(open(path))
    by_kernel: dict[str, dict[str, tuple[float, int, str]]] = defaultdict(dict)
    for b in doc["benchmarks"]:
        x = b["extra_info"]
        by_kernel[x["kernel"]][x["impl"]] = (b["stats"]["median"], x["work"], x["unit"])
    print("| kernel | implementation | median time | work | rate | C speed-up (rates) |")
    print("|---|---|---|---|---|---|")
    for kernel, impls in by_kernel.items():
        c = impls.get("C")
        c_rate = c[1] / c[0] if c else None
        for impl, (t, work, unit) in sorted(impls.items(), key=lambda kv: kv[1][1] / kv[1][0], reverse=True):
            rate = work / t
            ratio = f"{c_rate / rate:.1f}x" if c and impl != "C" else ""
            print(f"| {kernel} | {impl} | {t * 1e3:.3f} ms | {work:,} {unit} | {rate / 1e6:,.2f} M {unit}/s | {ratio} |")
    extras = [b["extra_info"] for b in doc["benchmarks"] if set(b["extra_info"]) - {"kernel", "impl", "work", "unit"}]
    for x in extras:
        rest = {k: v for k, v in x.items() if k not in ("kernel", "impl", "work", "unit")}
        print(f"\n{x['kernel']}: " + ", ".join(f"{k} = {v}" for k, v in rest.items()))


if __name__ == "__main__":
    main(sys.argv[1])
