#!/usr/bin/env python3
"""Merge per-file word counts into the top-N words across all the files: the reduce
stage of ``runner submit --merge``.

Reads every ``*_COUNTS.tsv.gz`` below INPUTS_DIR (at any depth: Batch places each
merged task's files under their full blob names), adds them up exactly and writes
``merged_OUTPUT.txt`` and ``.json`` in the same formats as a file's, ordered by the same
rule (count descending, then word ascending). With ``--counts-only`` it writes the
summed counts instead, ``merged_COUNTS.tsv.gz``, for a merge above it: merges form a
tree, each merging a bounded number of tasks' counts, and summing is associative, so the
root's result equals topwords run over every input's words together.

Runs on a node next to topwords.py, whose word rules and file formats it shares;
standard library only. Exit status: 0 success, 2 usage error, 3 no counts or an
unreadable counts file.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from task import topwords
else:  # on a node topwords.py is staged beside this file, with no package around them
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import topwords

MERGED_STEM = "merged"


def merge(inputs_dir: Path) -> tuple[Counter[bytes], int, int]:
    """The summed counts below ``inputs_dir``, how many inputs they stand for, and how
    many counts files were read."""
    counts: Counter[bytes] = Counter()
    files = sorted(inputs_dir.rglob(f"*{topwords.COUNTS_SUFFIX}"))
    inputs = topwords.add_counts(files, counts)
    return counts, inputs, len(files)


def write_top(
    counts: Counter[bytes], inputs: int, n: int, output_dir: Path, seconds: float
) -> None:
    best = topwords.top(counts, n)
    text = "".join(f"{word}\t{count}\n" for word, count in best)
    topwords.write_text_atomically(output_dir / f"{MERGED_STEM}_OUTPUT.txt", text)
    document: dict[str, object] = {
        "input": MERGED_STEM,
        "inputs": inputs,
        "top": [[word, count] for word, count in best],
        "total_words": sum(counts.values()),
        "distinct_words": len(counts),
        "seconds": round(seconds, 6),
        "script_sha256": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
    }
    for key, variable in topwords.BATCH_ENVIRONMENT.items():
        if os.environ.get(variable):
            document[key] = os.environ[variable]
    topwords.write_text_atomically(
        output_dir / f"{MERGED_STEM}_OUTPUT.json", topwords.json_one_key_per_line(document)
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = topwords.Parser(prog="merge.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs_dir", type=Path, metavar="INPUTS_DIR")
    parser.add_argument(
        "--top", type=topwords.positive_int("--top"), default=3, metavar="N", help="default 3"
    )
    parser.add_argument("--output-dir", type=Path, default=Path("output"), metavar="DIR")
    parser.add_argument(
        "--counts-only",
        action="store_true",
        help=f"write the summed counts ({MERGED_STEM}{topwords.COUNTS_SUFFIX}) only",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()
    try:
        args = parse_args(argv)
        if not args.inputs_dir.is_dir():
            raise topwords.TopWordsError(
                f"inputs directory not found: {args.inputs_dir}", topwords.EXIT_INPUT
            )
        counts, inputs, files = merge(args.inputs_dir)
        if not files:
            raise topwords.TopWordsError(
                f"no *{topwords.COUNTS_SUFFIX} files below {args.inputs_dir}", topwords.EXIT_INPUT
            )
        args.output_dir.mkdir(parents=True, exist_ok=True)
        if args.counts_only:
            path = args.output_dir / f"{MERGED_STEM}{topwords.COUNTS_SUFFIX}"
            topwords.write_counts(counts, path, inputs)
        else:
            write_top(counts, inputs, args.top, args.output_dir, time.monotonic() - started)
        print(f"merged {files} counts files ({inputs} inputs): {len(counts)} distinct words")
    except topwords.TopWordsError as error:
        print(f"merge: error: {error}", file=sys.stderr)
        return error.status
    except (OSError, EOFError, ValueError) as error:
        print(f"merge: error: {error}", file=sys.stderr)
        return topwords.EXIT_INPUT
    return topwords.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
