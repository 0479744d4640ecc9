"""How the dose parser's cost grows with the question's length (target: linear).

    .venv/bin/python benchmarks/dose_parse.py [--sizes 4000 16000 64000] [--out benchmarks/results/dose_parse.json]

For several question shapes — dense with reactions and grades, with lab values and lab terms, with long
negated lists, with generic nouns and no clause separators — a question of each size is built by repeating
the shape, and ``parse(question, history)`` is timed (best of 5, one warm-up). Reported per shape: time at
each size and the cost per character relative to the smallest size; linear means the ratio stays near 1
(target: at most 2× from the smallest to the largest size). The real request path caps the question's
length (issue 9); this measures the parser alone, without the cap.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import ROOT

SHAPES = {
    "reactions and grades": "grade 3 rash and grade 2 eye toxicity, CPK 12x ULN, ",
    "lab values": "creatinine 2x baseline CK 3x ULN rhabdo creatinine normal CPK 4500 U/L ",
    "negated lists": "grade 3 rash, no SJS, TEN or DRESS; SJS, TEN and DRESS ruled out. ",
    "generic nouns, one clause": "patient has a grade 3 toxicity tox side effect skin toxicity ",
    "percent and extent": "rash covering 40% BSA creatinine up 50% from baseline doubled ",
}
HISTORY = ("grade 3 eye toxicity, what now?",)


def timed(question: str) -> float:
    from bot.dose import parse

    parse(question, HISTORY)  # warm-up (lexicon, typo cache)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        parse(question, HISTORY)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4000, 16000, 64000])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    sizes = sorted(args.sizes)
    results: dict[str, dict[str, float]] = {}
    print(f"{'shape':28} " + " ".join(f"{n:>10}" for n in sizes) + "   per-char ratio (largest/smallest)")
    for name, unit in SHAPES.items():
        row: dict[str, float] = {}
        for n in sizes:
            q = (unit * (n // len(unit) + 1))[:n]
            row[str(n)] = timed(q)
        ratio = (row[str(sizes[-1])] / sizes[-1]) / (row[str(sizes[0])] / sizes[0])
        results[name] = {**row, "per_char_ratio": ratio}
        cells = " ".join(f"{row[str(n)] * 1000:>8.1f}ms" for n in sizes)
        print(f"{name:28} {cells}   {ratio:.2f}× {'ok' if ratio <= 2 else 'SUPER-LINEAR'}")
    if args.out is not None:
        out = args.out if args.out.is_absolute() else ROOT / args.out
        out.write_text(json.dumps({"sizes": sizes, "results": results}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
