"""Benchmark task/topwords.py against `wc -w` and the tutorial's approach, in one run.

Run by hand: ``python bench/task.py [--mb 256] [--seed 7]``. It generates a seeded text
file with a Zipf-like vocabulary (cached under bench/.cache/), then times each command
on it and prints wall seconds, peak RSS (the sum over the whole process tree, sampled
every 20 ms) and the ratios the targets are stated in.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
TOPWORDS = ROOT / "task" / "topwords.py"

TUTORIAL = """
import collections, string, sys
with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
    content = f.read()
words = [word.strip(string.punctuation) for word in content.split()]
print(collections.Counter(words).most_common(3))
"""
"""The tutorial's task: read everything, split, strip ASCII punctuation, Counter."""

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_ACCENTED = "éèàçüöñßøåæœ"


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        length = max(1, min(14, int(rng.gauss(6, 2.5))))
        word = "".join(rng.choice(_LETTERS) for _ in range(length))
        if rng.random() < 0.05:  # some non-ASCII words
            i = rng.randrange(len(word))
            word = word[:i] + rng.choice(_ACCENTED) + word[i + 1 :]
        words.add(word)
    return sorted(words)


def _variants(word: str, rank: int) -> list[tuple[str, float]]:
    """A word as it appears in prose: mostly plain, sometimes capitalized or punctuated."""
    weight = 1.0 / (rank + 1) ** 1.05
    return [
        (word, weight * 0.80),
        (word.capitalize(), weight * 0.08),
        (word + ",", weight * 0.06),
        (word + ".", weight * 0.04),
        ("«" + word + "»", weight * 0.01),
        ("(" + word.upper() + ")", weight * 0.01),
    ]


def generate(path: Path, megabytes: int, seed: int) -> None:
    rng = random.Random(seed)
    vocabulary = _vocabulary(rng, 200_000)
    rng.shuffle(vocabulary)
    tokens: list[str] = []
    cumulative: list[float] = []
    total = 0.0
    for rank, word in enumerate(vocabulary):
        for token, weight in _variants(word, rank):
            total += weight
            tokens.append(token)
            cumulative.append(total)
    # Mostly spaces and newlines; a no-break space is rare in prose, as it is here.
    separators = [" "] * 400 + ["\n"] * 40 + ["  "] * 10 + ["\t"] * 5 + ["\u00a0"]
    target = megabytes << 20
    temporary = path.with_suffix(".tmp")
    written = 0
    with open(temporary, "wb") as file:
        while written < target:
            batch = rng.choices(tokens, cum_weights=cumulative, k=100_000)
            gaps = rng.choices(separators, k=len(batch))
            written += file.write("".join(w + g for w, g in zip(batch, gaps, strict=True)).encode())
    os.replace(temporary, path)


def corpus(megabytes: int, seed: int) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"zipf-v2-{megabytes}mb-seed{seed}.txt"
    if not path.exists():
        print(f"generating {path.name} ...", file=sys.stderr, flush=True)
        generate(path, megabytes, seed)
    return path


@dataclass
class Run:
    name: str
    seconds: float
    peak_rss_mb: float


class TreeMemory:
    """Samples the resident memory of a process and all its descendants, from /proc.

    Each pid is classified once (descendant or not), so a sample reads only the files of
    the tree itself and steals little CPU from what is being measured.
    """

    def __init__(self, root: int) -> None:
        self.tree = {root}
        self.others: set[int] = set()
        self.page_kb = os.sysconf("SC_PAGE_SIZE") // 1024

    def _parent(self, pid: int) -> int | None:
        try:
            with open(f"/proc/{pid}/stat") as file:
                return int(file.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return None

    def sample_kb(self) -> int:
        for name in os.listdir("/proc"):
            if name.isdigit() and (pid := int(name)) not in self.tree and pid not in self.others:
                parent = self._parent(pid)
                (self.tree if parent in self.tree else self.others).add(pid)
        total = 0
        for pid in list(self.tree):
            try:
                with open(f"/proc/{pid}/statm") as file:
                    total += int(file.read().split()[1]) * self.page_kb
            except OSError:
                continue
        return total


def measure(name: str, command: list[str], env: dict[str, str] | None = None) -> Run:
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env)
    peak = 0
    memory = TreeMemory(process.pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, memory.sample_kb())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    process.wait()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{name} failed with exit status {process.returncode}")
    return Run(name, seconds, peak / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="size of the test file in MiB")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command (best kept)")
    parser.add_argument("--skip-tutorial", action="store_true", help="it takes about 20 s")
    args = parser.parse_args()
    path = corpus(args.mb, args.seed)
    double = corpus(args.mb * 2, args.seed)
    output = CACHE / "output"
    cpus = len(os.sched_getaffinity(0))
    topwords = [sys.executable, str(TOPWORDS), "--output-dir", str(output)]
    c_locale = {**os.environ, "LC_ALL": "C"}

    def best_of(name: str, command: list[str], env: dict[str, str] | None = None) -> Run:
        """Fastest of --repeat runs (noise only ever adds time) and the largest peak."""
        runs = [measure(name, command, env) for _ in range(args.repeat)]
        return Run(name, min(r.seconds for r in runs), max(r.peak_rss_mb for r in runs))

    # Interleaved in one run, so that every ratio compares figures taken side by side.
    runs = [
        best_of("wc -w", ["wc", "-w", str(path)]),
        best_of("wc -w (LC_ALL=C)", ["wc", "-w", str(path)], env=c_locale),
    ]
    if not args.skip_tutorial:
        runs.append(measure("tutorial (1 run)", [sys.executable, "-c", TUTORIAL, str(path)]))
    runs += [
        best_of("topwords 1 worker", [*topwords, "--workers", "1", str(path)]),
        best_of(f"topwords {cpus} workers", [*topwords, "--workers", str(cpus), str(path)]),
        best_of(f"topwords {cpus} workers, 2x file", [*topwords, str(double)]),
    ]
    by_name = {run.name: run for run in runs}
    print(f"file: {path.name} ({path.stat().st_size / 2**20:.0f} MiB), {cpus} usable CPUs")
    print(f"{'command':<34}{'seconds':>9}{'peak RSS MiB':>14}")
    for run in runs:
        print(f"{run.name:<34}{run.seconds:>9.2f}{run.peak_rss_mb:>14.1f}")
    wc = by_name["wc -w"].seconds
    best = by_name[f"topwords {cpus} workers"].seconds
    print(f"topwords/wc: {best / wc:.2f}x (target <= 3)")
    if "tutorial (1 run)" in by_name:
        tutorial = by_name["tutorial (1 run)"].seconds
        print(f"tutorial/wc: {tutorial / wc:.2f}x, tutorial/topwords: {tutorial / best:.2f}x")
    print(
        f"speed-up 1 -> {cpus} workers: {by_name['topwords 1 worker'].seconds / best:.2f}x"
        " (target >= 1.7)"
    )


if __name__ == "__main__":
    main()
