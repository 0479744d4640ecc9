"""Regenerate bot/data/word_zipf.tsv: English word frequencies (Zipf scale) from the wordfreq package.

Run once by a developer (`pip install wordfreq`); faqbot reads the TSV at run time and never needs wordfreq.
Only words with Zipf >= MIN_ZIPF are kept; an unknown word counts as rarer than all of them.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from wordfreq import iter_wordlist, zipf_frequency

MIN_ZIPF = 3.3
OUT = Path(__file__).resolve().parent.parent / "bot" / "data" / "word_zipf.tsv"


def main() -> int:
    rows = []
    for word in iter_wordlist("en", wordlist="best"):
        z = zipf_frequency(word, "en", wordlist="best")
        if z < MIN_ZIPF:
            break
        if re.fullmatch(r"[a-z][a-z'-]*", word):
            rows.append(f"{word}\t{z:.1f}")
    OUT.write_text(f"# word\tzipf (wordfreq 'best' English list, >= {MIN_ZIPF})\n" + "\n".join(rows) + "\n")
    print(f"wrote {len(rows)} words to {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
