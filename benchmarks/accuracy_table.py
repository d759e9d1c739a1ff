"""Turn estimate_accuracy.py's JSON lines into the markdown table of docs/benchmarks.md."""

from __future__ import annotations

import json
import sys

MIB = 1024**2


def main(path: str) -> None:
    rows = [json.loads(line) for line in open(path)]
    print("| ngl | KV | ctx | predicted | measured | error | within | formula only | rule of thumb |")
    print("|---:|---|---:|---:|---:|---:|:-:|---:|---:|")
    for r in rows:
        m = r["measured"]
        print(f"| {r['ngl']} | {r['kv']} | {r['ctx']} | {r['predicted'] / MIB:,.0f} | {m / MIB:,.0f} | "
              f"{r['error'] / MIB:+.0f} | {'yes' if r['ok'] else '**no**'} | "
              f"{(r['formula'] - m) / MIB:+.0f} | {(r['rule_of_thumb'] - m) / MIB:+,.0f} |")
    worst = max(abs(r["error"]) / r["tolerance"] for r in rows)
    print(f"\n{len(rows)} rows, all within max(3%, 256 MiB): {all(r['ok'] for r in rows)}; "
          f"largest error {max(abs(r['error']) for r in rows) / MIB:.0f} MiB "
          f"({worst:.3f} of the tolerance); rule of thumb off by up to "
          f"{max(abs(r['rule_of_thumb'] - r['measured']) for r in rows) / MIB:,.0f} MiB.")


if __name__ == "__main__":
    main(sys.argv[1])
