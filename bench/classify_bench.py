"""Time the classifier: start-up (jieba, OpenCC, the index) and one guess per text.

    python bench/classify_bench.py --texts 5000 --corrections 3000

Texts are made from the demo's resident stories (seeded): one to four stories with
filler, a place and a phone number, cut to at most 200 characters, a tenth of
them in traditional characters, a tenth with urgent words. The index comes from the
reference data; the learned table from `--corrections` of those texts, each given
a random category (the worst case: many words, spread votes). No database: the
per-process store reads it only when a stamp changed (services/classify_store.py).
Prints milliseconds: median, p95, p99, max. Run it twice: the first run also
builds jieba's dictionary cache (in the temp dir).
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FILLER = ("麻烦尽快处理一下，", "谢谢社区！", "已经好几天了，", "老人孩子都不方便，", "物业说不归他们管，",
          "打了好几次电话也没人来，", "请网格员帮忙协调一下。", "晚上看不清楚，")
URGENT = ("楼道里好像有煤气味，", "配电箱冒烟了，", "电梯里困了人，")


def make_texts(count: int, seed: int = 7, min_length: int = 0) -> list[str]:
    """`count` resident-like requests of up to 200 characters (at least `min_length`)."""
    from opencc import OpenCC

    from ticketing.demo_data import STORIES

    rng = random.Random(seed)
    to_traditional = OpenCC("s2t")
    texts = []
    for n in range(count):
        parts = []
        stories = rng.randint(1, 4)
        while stories > 0 or len("".join(parts)) < min_length:
            story = rng.choice(STORIES)
            parts.append(story.description.format(c="锦华苑", b=f"{rng.randint(1, 12)}号楼", u=rng.randint(1, 4)))
            parts.append(rng.choice(FILLER))
            stories -= 1
        if n % 10 == 3:
            parts.insert(1, rng.choice(URGENT))
        parts.append(f"电话139{rng.randint(10000000, 99999999)}")
        text = "".join(parts)[:200]
        texts.append(to_traditional.convert(text) if n % 10 == 7 else text)
    return texts


def timed(label: str, action: Callable[[], object]) -> object:
    started = time.perf_counter()
    result = action()
    print(f"{label:<42} {(time.perf_counter() - started) * 1000:9.1f} ms")
    return result


def report(label: str, samples: list[float]) -> None:
    samples = sorted(samples)
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    print(f"{label:<42} median {statistics.median(samples):.3f}  p95 {pick(0.95):.3f}  "
          f"p99 {pick(0.99):.3f}  max {samples[-1]:.3f} ms  (n={len(samples)})")


def reference_index() -> object:
    """jieba, OpenCC and the index of the reference data, each step timed."""
    from ticketing.reference import CATEGORIES, TIERS, TRIGGER_WORDS
    from ticketing.services.classify import SEGMENTER, CategoryRef, TierRef, build_index

    leaves = [(code, zh, en, kw) for *_, children in CATEGORIES for code, zh, en, _t, kw in children]
    categories = [(CategoryRef(i, code, zh, en, position=i), kw) for i, (code, zh, en, kw) in enumerate(leaves)]
    tiers = [(TierRef(i, code, zh, en, rank, accept, resolve), TRIGGER_WORDS.get(code, ""))
             for i, (code, zh, en, accept, resolve, _w, rank) in enumerate(TIERS)]
    timed("jieba + OpenCC start-up", lambda: SEGMENTER.tokenizer)
    index = timed("index from the reference data", lambda: build_index(categories, tiers))
    timed("teach jieba the keywords", lambda: SEGMENTER.add_words(index.words))  # type: ignore[attr-defined]
    return index


def learned_from(texts: list[str], categories: int) -> object:
    """A learned table of `texts`, each corrected to a random category."""
    from ticketing.services.classify import SEGMENTER, Learned, normalise

    rng = random.Random(11)
    rows = [(SEGMENTER.words(normalise(text)), rng.randrange(categories)) for text in texts]
    return Learned().with_texts(rows)


def measure(label: str, texts: list[str], guess: Callable[[str], object]) -> None:
    samples = []
    for text in texts:
        begun = time.perf_counter()
        guess(text)
        samples.append((time.perf_counter() - begun) * 1000)
    report(label, samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=5000)
    parser.add_argument("--corrections", type=int, default=3000)
    args = parser.parse_args()
    started = time.perf_counter()
    from ticketing.services.classify import Learned, guess_with

    print(f"{'import':<42} {(time.perf_counter() - started) * 1000:9.1f} ms")
    texts = make_texts(args.texts)
    print(f"texts: {len(texts)}, mean length {statistics.mean(map(len, texts)):.0f} characters")
    index = reference_index()
    categories = len(index.categories)  # type: ignore[attr-defined]
    learned = timed(f"learned table of {args.corrections} corrections",
                    lambda: learned_from(make_texts(args.corrections, seed=3), categories))
    measure("one guess, keywords only", texts, lambda text: guess_with(index, Learned(), text))  # type: ignore[arg-type]
    measure("one guess, keywords and learned words", texts,
            lambda text: guess_with(index, learned, text))  # type: ignore[arg-type]
    longest = make_texts(args.texts, seed=5, min_length=200)
    measure("one guess, 200 characters, keywords only", longest,
            lambda text: guess_with(index, Learned(), text))  # type: ignore[arg-type]
    measure("one guess, 200 characters, with learned", longest,
            lambda text: guess_with(index, learned, text))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
