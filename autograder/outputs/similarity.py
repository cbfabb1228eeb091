"""Similar submissions, for the instructor to look at: pairs and clusters of students whose own
code is alike once names, comments, layout and literal values are set aside.

The MOSS method (winnowed fingerprints of normalised code, boilerplate subtracted) through
``copydetect``: its ``filter_code`` lexes with pygments and writes every name as ``V``/``F``/``O``
and every string as ``S``, dropping comments and whitespace (numbers become ``N`` here too); its
``winnow`` picks the fingerprints, and its ``find_fingerprint_overlap`` and ``get_copied_slices``
find the passages two students share. Its ``hashed_kgrams``, and so ``CodeFingerprint`` and
``compare_files``, are not used: they hash with Python's salted ``hash()``, so the fingerprints
winnowing keeps, and every score, would change from run to run; k-grams are hashed here with a
fixed function instead.

Only a student's own characters count. A character is the book's when some k-gram of the
boilerplate (release stubs, the book's and the reference code) covers it, and a fingerprint made
only of the book's characters is dropped, so students who typed the book's solution or left the
stubs have nothing to share, however their cells are joined. A fingerprint held by a large share
of the class is an idiom of the exercise and is dropped too (MOSS's ``-m``); a group of copies
larger than that share is therefore not reported. Pure: it reads text, never runs the code.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from copydetect.utils import (
    filter_code,
    find_fingerprint_overlap,
    get_copied_slices,
    winnow,
)
from numpy.lib.stride_tricks import sliding_window_view

from autograder import notebooks
from autograder.grading.submission import Problem, read_notebook
from autograder.kit.policy import student_sources
from autograder.paths import ASSIGNMENT, RELEASE_DIR, SOURCE_DIR

# In normalised characters (``V(V,V)`` is six): the shortest shared passage that counts
# (copydetect's default noise threshold; at 20, two honest students of the corpus who share
# one line score 0.725), and the winnowing window: a passage of NOISE + WINDOW - 1 is sure
# to be found.
NOISE = 25
WINDOW = 4
# The lowest pair score reported. On tests/corpus.py, planted copies (renamed, reordered,
# reformatted, literals changed) score 0.8-1.0 and pairs of independent students 0.375 at most.
THRESHOLD = 0.5
# Own code shorter than this counts as this long in a score: a few shared characters are an
# idiom, not evidence (a shared one-line answer of 20 characters scores 0.5).
MIN_OWN = 40
# A fingerprint held by more students than COMMON_SHARE of the class (and than COMMON_FLOOR)
# is an idiom; the cap also bounds the candidate pairs one fingerprint proposes.
COMMON_SHARE = 0.05
COMMON_FLOOR = 10
# Characters read per notebook: an answer notebook holds a few kB of the student's code, and
# pygments takes up to 0.7 s on 20,000 characters of hostile text (one token per character).
MAX_CHARS = 20_000
CLUSTER_SIZE = 3

_NUMBER = re.compile(r"\.?\d[\d_]*(?:\.[\d_]*)?(?:[eE][+-]?\d+)?[jJ]?")
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd: a polynomial hash modulo 2**64
# MurmurHash3's fmix64 finaliser, so that the smallest hash of a window is a fair draw.
_MIX = (np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))
_SHIFT = np.uint64(33)
# 53-bit hashes: copydetect's winnow compares them as float64, exactly only up to 2**53.
_DROP_BITS = np.uint64(11)
_NO_HASHES = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Pair:
    """Two students whose own code is alike.

    ``score`` (0 to 1): the larger of the two students' shares of their own code (normalised,
    without boilerplate and idioms, all notebooks together) that lies in passages the other's
    code has in the same notebook; own code shorter than ``MIN_OWN`` characters counts as that
    long. 1.0: all that one of them wrote is in the other's submission. ``notebooks``: the same
    share per notebook where they have passages in common. ``matched``: the own normalised
    characters in those passages (of the student with fewer).
    """

    a: str
    b: str
    score: float
    notebooks: dict[str, float] = field(default_factory=dict)
    matched: int = 0


@dataclass(frozen=True)
class Cluster:
    """``CLUSTER_SIZE`` or more students connected by reported pairs.

    ``score``: the weakest link needed to connect them all (single linkage): every member
    reaches every other through pairs scoring at least this, and at a higher threshold the
    group splits.
    """

    students: tuple[str, ...]
    score: float


@dataclass(frozen=True)
class Similarity:
    """Reported pairs and clusters, each sorted by score, highest first."""

    pairs: tuple[Pair, ...] = ()
    clusters: tuple[Cluster, ...] = ()
    threshold: float = THRESHOLD


@dataclass(frozen=True)
class _Fingerprints:
    """copydetect's view of one document (kept hashes, their positions), with its own
    characters before each position (a cumulative count) and how many its fingerprints cover."""

    hashes: frozenset[int]
    hash_idx: dict[int, list[int]]
    own: np.ndarray
    coverage: int


_EMPTY = _Fingerprints(frozenset(), {}, np.zeros(1, dtype=np.int64), 0)
_Doc = tuple[
    str, str
]  # (notebook, normalised code): students with equal ones share the work


def normalise(code: str) -> str:
    """``code`` as copydetect's filter leaves it, numbers as ``N``: what counts in a match.

    Text that is not Python is kept as the lexer's error tokens, so it is scored on what it is;
    only the first ``MAX_CHARS`` characters are read.
    """
    try:
        filtered, _ = filter_code(code[:MAX_CHARS], "answer.py", language="python")
    except Exception:  # pygments on hostile text: that notebook contributes nothing
        return ""
    return _NUMBER.sub("N", filtered)


def _kgram_hashes(text: str) -> np.ndarray:
    """A fixed 53-bit hash (int64) of each NOISE-character k-gram of ``text``."""
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    if len(codes) < NOISE:
        return _NO_HASHES
    powers = _MULTIPLIER ** np.arange(NOISE - 1, -1, -1, dtype=np.uint64)
    h = sliding_window_view(codes.astype(np.uint64), NOISE) @ powers
    for multiplier in _MIX:
        h ^= h >> _SHIFT
        h *= multiplier
    h ^= h >> _SHIFT
    return (h >> _DROP_BITS).astype(np.int64)


def _book_hashes(boilerplate: Iterable[str]) -> np.ndarray:
    """Every k-gram hash of the boilerplate (all of them, as copydetect's window of 1)."""
    found = [
        _kgram_hashes(normalise(code)) for code in boilerplate if isinstance(code, str)
    ]
    return np.unique(np.concatenate(found)) if found else _NO_HASHES


def _winnowed(text: str, book: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The winnowed fingerprints of normalised ``text`` that hold an own character (hashes,
    positions), and the own characters before each position (0 to len(text))."""
    hashes = _kgram_hashes(text)
    if len(hashes) == 0:
        return _NO_HASHES, _NO_HASHES, np.zeros(1, dtype=np.int64)
    starts = np.flatnonzero(np.isin(hashes, book))
    edges = np.zeros(len(text) + 1, dtype=np.int64)
    np.add.at(edges, starts, 1)
    np.add.at(edges, starts + NOISE, -1)
    own = np.concatenate([[0], np.cumsum(np.cumsum(edges[:-1]) == 0)])
    selected, idx = winnow(hashes, WINDOW, remove_duplicates=False)
    keep = own[idx + NOISE] > own[idx]
    return selected[keep], idx[keep], own


def _fingerprints(
    hashes: np.ndarray, idx: np.ndarray, own: np.ndarray, common: set[int]
) -> _Fingerprints:
    """The fingerprints less the idioms, in copydetect's layout, with their own coverage."""
    hash_idx: dict[int, list[int]] = defaultdict(list)
    for h, i in zip(hashes.tolist(), idx.tolist(), strict=True):
        if h not in common:
            hash_idx[h].append(i)
    if not hash_idx:
        return _EMPTY
    positions = np.concatenate([np.array(i) for i in hash_idx.values()])
    coverage = _own_in(get_copied_slices(positions, NOISE), own)
    return _Fingerprints(frozenset(hash_idx), dict(hash_idx), own, coverage)


def _own_in(slices: np.ndarray, own: np.ndarray) -> int:
    """Own characters inside copydetect's slices (starts in row 0, ends in row 1)."""
    starts, ends = slices[0].astype(np.int64), slices[1].astype(np.int64)
    return int(np.sum(own[ends] - own[starts]))


def _overlap(x: _Fingerprints, y: _Fingerprints) -> tuple[int, int]:
    """Own characters of ``x`` and of ``y`` in the passages they share."""
    if x is y:
        return x.coverage, y.coverage
    if x.hashes.isdisjoint(y.hashes):
        return 0, 0
    idx_x, idx_y = find_fingerprint_overlap(x.hashes, y.hashes, x.hash_idx, y.hash_idx)
    return (
        _own_in(get_copied_slices(idx_x, NOISE), x.own),
        _own_in(get_copied_slices(idx_y, NOISE), y.own),
    )


def _share(shared: int, own: int) -> float:
    return min(1.0, shared / max(own, MIN_OWN))


def similar_submissions(
    sources: Mapping[str, Mapping[str, str]],
    boilerplate: Iterable[str],
    threshold: float = THRESHOLD,
) -> Similarity:
    """The pairs of students scoring at least ``threshold`` (``Pair`` says what a score means),
    and the clusters they form.

    ``sources[student][notebook]``: the code that student wrote in that notebook, compared only
    with the same notebook of others. ``boilerplate``: code that never counts. Candidate pairs
    come from an inverted index from fingerprint to students, so the work grows with the pairs
    that share something, not with the square of the class.
    """
    book = _book_hashes(boilerplate)
    texts: dict[
        str, str
    ] = {}  # raw -> normalised: untouched and copied notebooks repeat
    winnowed: dict[_Doc, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    docs: dict[str, dict[str, _Doc]] = {}
    for student, codes in sources.items():
        docs[student] = {}
        for notebook, code in codes.items():
            if not isinstance(code, str):
                continue
            if code not in texts:
                texts[code] = normalise(code)
            doc = (notebook, texts[code])
            if doc not in winnowed:
                winnowed[doc] = _winnowed(doc[1], book)
            if len(winnowed[doc][0]):
                docs[student][notebook] = doc

    holders: dict[tuple[str, int], list[str]] = defaultdict(list)
    for student, held in docs.items():
        for notebook, doc in held.items():
            for h in set(winnowed[doc][0].tolist()):
                holders[notebook, h].append(student)
    cap = max(COMMON_FLOOR, math.ceil(COMMON_SHARE * len(sources)))
    common: dict[str, set[int]] = defaultdict(set)
    candidates: set[tuple[str, str]] = set()
    for (notebook, h), students in holders.items():
        if len(students) > cap:
            common[notebook].add(h)
        else:
            candidates.update(itertools.combinations(sorted(students), 2))
    prints = {
        doc: _fingerprints(*found, common[doc[0]]) for doc, found in winnowed.items()
    }

    overlaps: dict[tuple[_Doc, _Doc], tuple[int, int]] = {}
    pairs = []
    for a, b in sorted(candidates):
        pair = _scored(a, b, docs, prints, overlaps)
        if pair.matched and pair.score >= threshold:
            pairs.append(pair)
    pairs.sort(key=lambda p: (-p.score, -p.matched, p.a, p.b))
    return Similarity(tuple(pairs), _clusters(pairs), threshold)


def _scored(
    a: str,
    b: str,
    docs: Mapping[str, Mapping[str, _Doc]],
    prints: Mapping[_Doc, _Fingerprints],
    overlaps: dict[tuple[_Doc, _Doc], tuple[int, int]],
) -> Pair:
    """The pair ``a``, ``b`` and its scores; ``overlaps`` keeps each pair of documents' overlap
    (groups of students with equal notebooks need it once)."""
    shared_a = shared_b = 0
    per_notebook = {}
    for notebook in sorted(docs[a].keys() & docs[b].keys()):
        x, y = docs[a][notebook], docs[b][notebook]
        if (x, y) not in overlaps:
            overlaps[x, y] = _overlap(prints[x], prints[y])
        over_a, over_b = overlaps[x, y]
        if over_a and over_b:
            shared_a, shared_b = shared_a + over_a, shared_b + over_b
            per_notebook[notebook] = round(
                max(
                    _share(over_a, prints[x].coverage),
                    _share(over_b, prints[y].coverage),
                ),
                4,
            )
    own_a = sum(prints[doc].coverage for doc in docs[a].values())
    own_b = sum(prints[doc].coverage for doc in docs[b].values())
    score = max(_share(shared_a, own_a), _share(shared_b, own_b))
    return Pair(a, b, round(score, 4), per_notebook, min(shared_a, shared_b))


def _clusters(pairs: list[Pair]) -> tuple[Cluster, ...]:
    """Connected groups of ``CLUSTER_SIZE`` or more over ``pairs`` (sorted by score, highest
    first), each with the score of the pair that joined it last: its weakest link."""
    parent: dict[str, str] = {}

    def root(student: str) -> str:
        parent.setdefault(student, student)
        while parent[student] != student:
            parent[student] = parent[parent[student]]
            student = parent[student]
        return student

    joined_at: dict[str, float] = {}
    for pair in pairs:
        top_a, top_b = root(pair.a), root(pair.b)
        if top_a != top_b:
            parent[top_b] = top_a
            joined_at[top_a] = pair.score
    members: dict[str, list[str]] = defaultdict(list)
    for student in list(parent):
        members[root(student)].append(student)
    clusters = [
        Cluster(tuple(sorted(group)), joined_at[top])
        for top, group in members.items()
        if len(group) >= CLUSTER_SIZE
    ]
    return tuple(sorted(clusters, key=lambda c: (-c.score, c.students)))


def sources_of(submitted: Path, students: Iterable[str]) -> dict[str, dict[str, str]]:
    """Each student's own code per release notebook, from nbgrader's layout
    ``submitted/<student>/<assignment>/``: answer cells and added cells, joined.

    Read with the grader's reader, so a link, device, oversized or malformed notebook is never
    followed or parsed further: it contributes nothing, as does a student name that is a path.
    """
    releases = {p.name: notebooks.read(p) for p in sorted(RELEASE_DIR.glob("*.ipynb"))}
    found: dict[str, dict[str, str]] = {}
    for student in students:
        found[student] = {}
        if Path(student).name != student or student in {"", ".", ".."}:
            continue
        for name, release_nb in releases.items():
            nb = read_notebook(submitted / student / ASSIGNMENT / name)
            if not isinstance(nb, Problem):
                found[student][name] = "\n".join(student_sources(nb, release_nb))
    return found


def book_boilerplate() -> list[str]:
    """Code that is no one's own: every code cell of the release (its answer cells are the
    stubs) and of the source notebooks (the book's code, the reference answers, the tests)."""
    return [
        cell.source
        for folder in (RELEASE_DIR, SOURCE_DIR)
        for path in sorted(folder.glob("*.ipynb"))
        for cell in notebooks.read(path).cells
        if cell.cell_type == "code"
    ]
