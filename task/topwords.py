#!/usr/bin/env python3
"""Write the top-N words of each input file, streaming, on all cores.

This is the program every Batch node runs, so it uses the standard library only.

Words, exactly: decode the file as UTF-8 with invalid bytes replaced by U+FFFD; split
with ``str.split()``; strip from each piece the leading and trailing characters whose
Unicode general category starts with P or S; casefold; drop empty strings.

How it stays fast and small: the file is read as bytes in small chunks and split on
ASCII whitespace; raw tokens are counted with ``Counter`` (a C loop), and each distinct
raw token is decoded, split on the remaining (non-ASCII) whitespace and normalized once.
That equals decoding the whole file first, because an ASCII byte always ends an invalid
UTF-8 sequence, so decoding never looks across it. Files are cut into byte ranges, one
per worker; a token cut by a range boundary comes back as the range's head or tail
fragment and the parent joins the fragments in order, so the result does not depend on
where the file was cut. Memory is bounded by the vocabulary, never by the file size.

Exit status: 0 success, 2 usage error, 3 input or output error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import heapq
import itertools
import json
import math
import os
import string
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrent.futures import Future

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_INTERRUPTED = 130

CHUNK_BYTES = 1 << 14
"""Bytes read at a time: small, so each chunk's token list stays in the CPU cache."""
PIECE_MIN_BYTES = 8 << 20
"""A file is split across workers only in pieces at least this large."""
RAW_FOLD_LIMIT = 1 << 17
"""Distinct raw tokens held before they are folded into word counts. With the vocabulary
this bounds a worker's memory (about 60 MB on the benchmark's text) however large the
file; folding twice as rarely is about 15% faster and takes about 20 MB more a worker."""

_ASCII_STRIP = string.punctuation  # every ASCII character of category P* or S*
_ASCII_STRIP_BYTES = _ASCII_STRIP.encode()
_ASCII_WHITESPACE = frozenset(b" \t\n\r\x0b\x0c")  # what bytes.split() splits on
BATCH_ENVIRONMENT = {
    "node": "AZ_BATCH_NODE_ID",
    "task": "AZ_BATCH_TASK_ID",
    "job": "AZ_BATCH_JOB_ID",
    "pool": "AZ_BATCH_POOL_ID",
}


class TopWordsError(Exception):
    """A problem reported as one line on stderr, with its exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# --- The word rules -------------------------------------------------------------------


def _is_punctuation_or_symbol(char: str) -> bool:
    return unicodedata.category(char)[0] in "PS"


def normalize(piece: str) -> str:
    """Strip leading and trailing punctuation and symbols from a piece, then casefold it."""
    if piece.isalpha():  # letters of any script: nothing to strip
        return piece.casefold()
    if piece.isascii():
        return piece.strip(_ASCII_STRIP).lower()  # ASCII casefold is lower()
    start, end = 0, len(piece)
    while start < end and _is_punctuation_or_symbol(piece[start]):
        start += 1
    while end > start and _is_punctuation_or_symbol(piece[end - 1]):
        end -= 1
    return piece[start:end].casefold()


def words(token: bytes) -> list[bytes]:
    """The words in a run of bytes that holds no ASCII whitespace, each UTF-8 encoded.

    Words are kept encoded until output: bytes order is code point order, so sorting
    is unchanged, and an ASCII token's word can be the token object itself.
    """
    if token.isalpha():  # ASCII letters only
        return [token.lower()]
    text = token.decode("utf-8", "replace")
    # Every whitespace character is unprintable, so a printable text is one piece.
    pieces = [text] if text.isprintable() else text.split()
    return [word.encode() for piece in pieces if (word := normalize(piece))]


def fold(raw: Counter[bytes], counts: Counter[bytes]) -> None:
    """Move raw-token counts into word counts, emptying ``raw``."""
    get = counts.get
    for token, n in raw.items():
        # Fast path: ASCII letters, perhaps wrapped in ASCII punctuation ("(word),").
        letters = token if token.isalpha() else token.strip(_ASCII_STRIP_BYTES)
        if letters.isalpha():
            word = letters if letters.islower() else letters.lower()
            counts[word] = get(word, 0) + n
        elif letters:
            for word in words(token):
                counts[word] = get(word, 0) + n
    raw.clear()


def top(counts: Counter[bytes], n: int) -> list[tuple[str, int]]:
    """The n most frequent words: count descending, then word ascending."""
    best = heapq.nsmallest(n, counts.items(), key=lambda item: (-item[1], item[0]))
    return [(word.decode(), count) for word, count in best]


# --- Counting a byte range ------------------------------------------------------------


@dataclass
class Piece:
    """What one byte range of a file contributes.

    ``counts`` holds the words of the tokens wholly inside the range. ``head`` is the
    bytes before the range's first ASCII whitespace and ``tail`` the bytes after its
    last; either may continue a token of the neighbouring range. A range with no ASCII
    whitespace at all is ``whole``: all its bytes are in ``head``.
    """

    head: bytes
    counts: Counter[bytes] = field(default_factory=Counter)
    tail: bytes = b""
    whole: bool = False
    started: float = 0.0


def count_range(path: str, start: int, end: int, chunk_bytes: int = CHUNK_BYTES) -> Piece:
    """Count the words of the tokens in bytes [start, end) of a file."""
    started = time.monotonic()
    raw: Counter[bytes] = Counter()
    counts: Counter[bytes] = Counter()
    head: bytes | None = None  # None until the range's first whitespace is seen
    parts: list[bytes] = []  # an unfinished token at the end of the bytes so far
    with open(path, "rb", buffering=0) as file:
        file.seek(start)
        remaining = end - start
        while remaining > 0:
            data = file.read(min(chunk_bytes, remaining))
            if not data:
                break  # the file shrank while we read it
            remaining -= len(data)
            # ASCII lower-casing now, in C, merges raw variants ("The", "THE") early; it
            # commutes with the word rules, which casefold and never split on a letter.
            data = data.lower()
            tokens = data.split()
            starts_open = data[0] not in _ASCII_WHITESPACE
            ends_open = data[-1] not in _ASCII_WHITESPACE
            if starts_open and ends_open and len(tokens) == 1:
                parts.append(data)  # no whitespace: the unfinished token goes on
                continue
            leading = b"".join(parts) + tokens[0] if starts_open else b"".join(parts)
            if head is None:
                head = leading
            elif leading:
                raw[leading] += 1
            lo, hi = (1 if starts_open else 0), len(tokens)
            if ends_open:
                parts = [tokens[-1]]
                hi -= 1
            else:
                parts = []
            raw.update(itertools.islice(tokens, lo, hi))
            if len(raw) > RAW_FOLD_LIMIT:
                fold(raw, counts)
    fold(raw, counts)
    tail = b"".join(parts)
    if head is None:
        return Piece(head=tail, counts=counts, whole=True, started=started)
    return Piece(head=head, counts=counts, tail=tail, started=started)


def join(pieces: Sequence[Piece]) -> Counter[bytes]:
    """Merge the pieces of one file, in order, completing the tokens cut between them.

    The pieces' counters are merged into the largest one, which saves a copy.
    """
    fragments: list[bytes] = []  # tokens that span a range boundary, made whole
    pending = b""
    for piece in pieces:
        if piece.whole:
            pending += piece.head
            continue
        fragments.append(pending + piece.head)
        pending = piece.tail
    fragments.append(pending)
    counters = sorted((piece.counts for piece in pieces), key=len, reverse=True)
    counts = counters[0] if counters else Counter()
    for other in counters[1:]:
        counts.update(other)
    for fragment in fragments:
        counts.update(words(fragment))
    return counts


def split_points(size: int, pieces: int) -> list[int]:
    """Offsets that cut a file into ``pieces`` ranges of about equal size.

    Any offset will do: fragments are joined as bytes before they are decoded.
    """
    inner = {size * i // pieces for i in range(1, pieces)} - {0, size}
    return [0, *sorted(inner), size]


# --- Running over files ---------------------------------------------------------------


@dataclass
class FileResult:
    path: str
    counts: Counter[bytes]
    size: int
    seconds: float


def _pieces_per_file(size: int, workers: int, piece_min_bytes: int) -> int:
    return max(1, min(workers, math.ceil(size / piece_min_bytes)))


def count_files(
    paths: Sequence[str],
    workers: int,
    chunk_bytes: int = CHUNK_BYTES,
    piece_min_bytes: int = PIECE_MIN_BYTES,
) -> Iterator[FileResult]:
    """Count every file, yielding each result as soon as all its pieces are in.

    Results come in input order. Small totals are counted in this process, which avoids
    the cost of starting workers for the common one-small-file Batch task.
    """
    sizes = [os.path.getsize(path) for path in paths]
    plans = [
        split_points(size, _pieces_per_file(size, workers, piece_min_bytes))
        for path, size in zip(paths, sizes, strict=True)
    ]
    if workers == 1 or sum(sizes) < piece_min_bytes:
        for path, size, points in zip(paths, sizes, plans, strict=True):
            pieces = [count_range(path, a, b, chunk_bytes) for a, b in itertools.pairwise(points)]
            yield _result(path, size, pieces)
        return
    # Imported here: a task of one small file (the common Batch task) never needs it.
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=workers)
    try:
        futures: list[list[Future[Piece]]] = [
            [
                pool.submit(count_range, path, a, b, chunk_bytes)
                for a, b in itertools.pairwise(points)
            ]
            for path, points in zip(paths, plans, strict=True)
        ]
        for index, (path, size, file_futures) in enumerate(zip(paths, sizes, futures, strict=True)):
            pieces = [future.result() for future in file_futures]
            if index == len(paths) - 1:
                pool.shutdown()  # all counted: free the workers' memory before the last merge
            yield _result(path, size, pieces)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _result(path: str, size: int, pieces: list[Piece]) -> FileResult:
    counts = join(pieces)
    seconds = time.monotonic() - min(piece.started for piece in pieces)
    return FileResult(path=path, counts=counts, size=size, seconds=seconds)


# --- Output ---------------------------------------------------------------------------


def script_sha256() -> str:
    """The sha256 of this file, so every result records which version computed it."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def write_text_atomically(path: Path, text: str) -> None:
    """Write to a temporary name in the same directory, then rename over the target."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def output_stem(path: str) -> str:
    return Path(path).stem


def write_outputs(
    result: FileResult, n: int, output_dir: Path, sha256: str, counts_dir: Path | None = None
) -> None:
    """``<stem>_OUTPUT.txt`` and ``.json``; with ``counts_dir`` ``<stem>_COUNTS.tsv.gz`` there."""
    best = top(result.counts, n)
    stem = output_stem(result.path)
    if counts_dir is not None:
        write_counts(result.counts, counts_dir / f"{stem}{COUNTS_SUFFIX}")
    write_text_atomically(
        output_dir / f"{stem}_OUTPUT.txt", "".join(f"{word}\t{count}\n" for word, count in best)
    )
    document: dict[str, object] = {
        "input": result.path,
        "top": [[word, count] for word, count in best],
        "total_words": sum(result.counts.values()),
        "distinct_words": len(result.counts),
        "bytes": result.size,
        "seconds": round(result.seconds, 6),
        "script_sha256": sha256,
    }
    for key, variable in BATCH_ENVIRONMENT.items():
        if os.environ.get(variable):
            document[key] = os.environ[variable]
    write_text_atomically(
        output_dir / f"{stem}_OUTPUT.json",
        json_one_key_per_line(document),
    )


COUNTS_SUFFIX = "_COUNTS.tsv.gz"
COUNTS_FORMAT = "topwords-counts/1"


def write_counts(counts: Counter[bytes], path: Path, inputs: int = 1) -> None:
    """Every word's exact count, for a merge stage: gzip of a JSON header line, then
    ``word<TAB>count`` lines sorted by word (a word never holds whitespace). The same
    counts always give the same bytes (no time stamp in the gzip header)."""
    header = json.dumps({"format": COUNTS_FORMAT, "inputs": inputs}).encode() + b"\n"
    body = b"".join(b"%s\t%d\n" % (word, counts[word]) for word in sorted(counts))
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file, gzip.GzipFile(fileobj=file, mode="wb", mtime=0) as z:
            z.write(header + body)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def add_counts(paths: Iterable[Path], into: Counter[bytes]) -> int:
    """Add every counts file's counts to ``into``; returns how many inputs they stand for."""
    return sum(read_counts(path, into) for path in paths)


def combine(folders: Sequence[Path], into: Path) -> None:
    """each.py's hook for a packed task: its inputs' counts, summed into one file in
    ``into`` (``combined_COUNTS.tsv.gz``), so the merge stage reads one file a task."""
    counts: Counter[bytes] = Counter()
    inputs = add_counts((p for f in folders for p in sorted(f.glob(f"*{COUNTS_SUFFIX}"))), counts)
    target = into / f"combined{COUNTS_SUFFIX}"
    if inputs:
        write_counts(counts, target, inputs)
    else:  # none succeeded: nothing to hand over, not even an earlier attempt's file
        target.unlink(missing_ok=True)


def read_counts(path: Path, into: Counter[bytes]) -> int:
    """Add a counts file's counts to ``into``; returns how many inputs it stands for."""
    with gzip.open(path, "rb") as file:
        header = json.loads(file.readline())
        if not isinstance(header, dict) or header.get("format") != COUNTS_FORMAT:
            raise TopWordsError(f"{path} is not a {COUNTS_FORMAT} file", EXIT_INPUT)
        get = into.get
        for line in file:
            word, _, count = line.rstrip(b"\n").rpartition(b"\t")
            into[word] = get(word, 0) + int(count)
    return int(header.get("inputs", 1))


def json_one_key_per_line(document: dict[str, object]) -> str:
    """JSON with one key per line and each value compact, so ``top`` reads as one line."""
    lines = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in document.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def summary(result: FileResult, n: int) -> str:
    """A few lines for stdout (Batch keeps them in the task's stdout.txt)."""
    lines = [
        f"{result.path}: {sum(result.counts.values())} words, "
        f"{len(result.counts)} distinct, top {n}:"
    ]
    lines += [f"  {word}\t{count}" for word, count in top(result.counts, n)]
    return "\n".join(lines)


# --- Command line ---------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exits with EXIT_USAGE."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise TopWordsError(message, EXIT_USAGE)


def positive_int(option: str) -> type[int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{option} must be a whole number, got {value!r}"
            ) from None
        if number < 1:
            raise argparse.ArgumentTypeError(f"{option} must be at least 1, got {number}")
        return number

    return parse  # type: ignore[return-value]


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = Parser(prog="topwords.py", description="Write the top-N words of each input file.")
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="text files (UTF-8)")
    parser.add_argument(
        "--top",
        type=positive_int("--top"),
        default=3,
        metavar="N",
        help="words to keep per file (default 3)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("output"),
        metavar="DIR",
        help="where <stem>_OUTPUT.txt and .json go (default ./output)",
    )
    parser.add_argument(
        "--counts-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"also write every word's count there, <stem>{COUNTS_SUFFIX}, for a merge stage",
    )
    parser.add_argument(
        "--workers",
        type=positive_int("--workers"),
        default=None,
        metavar="W",
        help="processes to use (default: the usable CPUs)",
    )
    args = parser.parse_args(argv)
    if not args.inputs:
        raise TopWordsError("no input files given", EXIT_USAGE)
    stems: dict[str, str] = {}
    for path in args.inputs:
        stem = output_stem(path)
        if stem in stems:
            raise TopWordsError(
                f"inputs {stems[stem]!r} and {path!r} would both write {stem}_OUTPUT.txt",
                EXIT_USAGE,
            )
        stems[stem] = path
    return args


def check_inputs(paths: Sequence[str], *directories: Path) -> None:
    """Fail before any work if an input can't be read or the output can't be written."""
    for path in paths:
        if not os.path.exists(path):
            raise TopWordsError(f"input not found: {path}", EXIT_INPUT)
        if os.path.isdir(path):
            raise TopWordsError(f"input is a directory: {path}", EXIT_INPUT)
        try:
            with open(path, "rb"):
                pass
        except OSError as error:
            raise TopWordsError(f"cannot read {path}: {error.strerror}", EXIT_INPUT) from None
    for directory in directories:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise TopWordsError(
                f"cannot create output directory {directory}: {error.strerror}", EXIT_INPUT
            ) from None


def _print_summary(text: str) -> None:
    """Print to stdout; if its reader went away (``| head``), keep writing the outputs."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        check_inputs(args.inputs, args.output_dir, *filter(None, [args.counts_dir]))
        sha256 = script_sha256()
        workers = args.workers or usable_cpus()
        for result in count_files(args.inputs, workers):
            write_outputs(result, args.top, args.output_dir, sha256, args.counts_dir)
            _print_summary(summary(result, args.top))
    except TopWordsError as error:
        print(f"topwords: error: {error}", file=sys.stderr)
        return error.status
    except OSError as error:
        where = f" {error.filename}" if error.filename else ""
        print(f"topwords: error:{where} {error.strerror or error}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("topwords: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
