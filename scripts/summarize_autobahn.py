#!/usr/bin/env python3
"""Summarize a kosoku/Autobahn report directory (index.json): counts per verdict, failing cases,
and a last line "N passed, M failed".

A case passes when its behavior is OK, NON-STRICT or INFORMATIONAL and its close behavior is
OK or INFORMATIONAL. Stdlib only.
"""
import json
import sys
from collections import Counter
from pathlib import Path

PASS = {"OK", "NON-STRICT", "INFORMATIONAL"}
PASS_CLOSE = {"OK", "INFORMATIONAL"}


def case_key(case_id: str):
    return [int(p) if p.isdigit() else p for p in case_id.split(".")]


def main() -> int:
    report = Path(sys.argv[1])
    index = json.loads((report / "index.json").read_text())
    behaviors, closes, failures, non_strict = Counter(), Counter(), [], []
    for agent, cases in index.items():
        for case_id, result in cases.items():
            b, c = result.get("behavior"), result.get("behaviorClose")
            behaviors[b] += 1
            closes[c] += 1
            if b not in PASS or c not in PASS_CLOSE:
                failures.append((case_id, b, c, agent))
            elif b == "NON-STRICT":
                non_strict.append(case_id)
    total = sum(behaviors.values())
    print("behavior:", ", ".join(f"{k}={v}" for k, v in sorted(behaviors.items())))
    print("behaviorClose:", ", ".join(f"{k}={v}" for k, v in sorted(closes.items())))
    if non_strict:
        print("NON-STRICT:", " ".join(sorted(non_strict, key=case_key)))
    for case_id, b, c, agent in sorted(failures, key=lambda f: case_key(f[0])):
        print(f"FAILED {case_id}: behavior={b} behaviorClose={c} ({agent})")
    print(f"{total - len(failures)} passed, {len(failures)} failed")
    return 1 if failures or total == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
