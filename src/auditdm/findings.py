"""Failure categories: flagged probes grouped into named weaknesses, from what an audit has.

Only the audit's own evidence is used (the questions and the answers, through sentence
embeddings), never the oracle's skill labels: those only measure afterwards how well the
categories match the skills (category purity, in ``verify.py``). A probe is represented by
its question and its expected answer (the consensus), each embedded by MiniLM: the answer
tells kinds of question apart that read alike ("how many circles ...?" is nearer to "what
color is the circle ?" than to "how many diamonds ...?", but "2" is near "3"). Flagged
probes are clustered (agglomerative, average linkage, a cosine-distance threshold rather
than a fixed count, so the number of categories follows the evidence); each category is
named by the opening its questions share and its most distinctive word (class-based
TF-IDF); every valid probe, flagged or not, is then assigned to its nearest category,
which gives each category a flag rate.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from auditdm.embed import embed
from auditdm.records import Category, ProbeRecord, distinct_probes

# Mean cosine distance (question and answer) at which two probes stop being the same kind.
# With MiniLM, "how many circles are there ?" / "how many diamonds are there ?" are 0.55
# apart and "2" / "3" about 0.1; "what color is the circle ?" is 0.45 from the first, and
# "red" about 0.7 from "2". On a 300-probe world audit (first zoo), 0.4 / 0.45 / 0.5 / 0.55 / 0.6 gave
# 12 / 11 / 11 / 9 / 7 categories with purity 0.82 / 0.84 / 0.86 / 0.81 / 0.81.
DISTANCE = 0.5
MIN_SIZE = 2  # smaller clusters are pooled as "other"
EXAMPLES = 4
OTHER = "other"


def probe_vectors(probes: Sequence[ProbeRecord]) -> np.ndarray:
    """Unit vectors whose cosine distance is the mean of the question and answer distances."""
    questions = embed([p.question or "" for p in probes])
    answers = embed([p.consensus or p.target_answer or "" for p in probes])
    return np.concatenate([questions, answers], axis=1) / np.sqrt(2)


def cluster(vectors: np.ndarray, distance: float = DISTANCE) -> np.ndarray:
    """Cluster labels 0..k-1 for unit vectors, by average-linkage cosine distance."""
    if len(vectors) < 2:
        return np.zeros(len(vectors), dtype=int)
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(n_clusters=None, distance_threshold=distance, metric="cosine", linkage="average")
    return np.asarray(model.fit_predict(vectors))


def _words(text: str) -> list[str]:
    return re.findall(r"[\w:']+", text.lower())


def _opening(texts: Sequence[str], share: float = 0.6, longest: int = 4) -> list[str]:
    """The longest opening (up to ``longest`` words) that at least ``share`` of ``texts`` start with."""
    words = [_words(t) for t in texts]
    opening: list[str] = []
    for n in range(1, longest + 1):
        heads = [tuple(w[:n]) for w in words if len(w) >= n]
        if not heads:
            break
        head, count = max(((h, heads.count(h)) for h in set(heads)), key=lambda hc: (hc[1], hc[0]))
        if count < share * len(words):
            break
        opening = list(head)
    return opening


def name_clusters(texts: Sequence[str], labels: Sequence[int]) -> dict[int, str]:
    """A short name per cluster: the opening most of its questions share ("how many"), and
    its most distinctive other word by class-based TF-IDF ("circles")."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

    clusters = sorted(set(labels))
    members = {c: [t for t, label in zip(texts, labels) if label == c] for c in clusters}
    vectorizer = TfidfVectorizer(stop_words=list(ENGLISH_STOP_WORDS), token_pattern=r"(?u)\b[\w:']+\b",
                                 sublinear_tf=True)  # fmt: skip
    try:
        weights = vectorizer.fit_transform([" ".join(members[c]) for c in clusters]).toarray()
        terms = [str(t) for t in vectorizer.get_feature_names_out()]
    except ValueError:  # nothing but stop words
        weights, terms = np.zeros((len(clusters), 0)), []
    names = {}
    for row, c in zip(weights, clusters):
        opening = _opening(members[c])
        keyword = next((terms[i] for i in np.argsort(-row) if row[i] > 0 and terms[i] not in opening), None)
        tail = ((["…"] if opening else []) + [keyword]) if keyword else []
        names[c] = " ".join(opening + tail) or OTHER
    return names


def _quote(text: str | None, limit: int = 80) -> str:
    text = re.sub(r"\s+", " ", text or "").strip()
    return f"“{text if len(text) <= limit else text[: limit - 1] + '…'}”"


def find_categories(probes: Sequence[ProbeRecord], distance: float = DISTANCE) -> list[Category]:
    """Categories of the flagged probes among ``probes`` (store records), largest first;
    repeats (the same question of the same image) are counted once."""
    probes = distinct_probes(probes)
    flagged = [p for p in probes if p.score == 1 and p.question]
    if not flagged:
        return []
    vectors = probe_vectors(flagged)
    labels = cluster(vectors, distance)
    sizes = np.bincount(labels)
    labels = np.where(sizes[labels] >= MIN_SIZE, labels, -1)  # -1: pooled as "other"
    names = name_clusters([p.question or "" for p in flagged], labels.tolist())
    names[-1] = OTHER
    groups = sorted(set(labels.tolist()), key=lambda c: (c == -1, -int((labels == c).sum())))
    centroids = {c: _unit(vectors[labels == c].mean(axis=0)) for c in groups}
    assigned = _assign(probes, centroids, distance)
    categories = []
    for c in groups:
        members = [flagged[i] for i in np.flatnonzero(labels == c)]
        closeness = vectors[labels == c] @ centroids[c]
        typical = [members[i] for i in np.argsort(-closeness)]
        example = typical[0]
        total = max(assigned.get(c, 0), len(members))
        description = (f"{len(members)} flagged of {total} probes like {_quote(example.question)}: the target "
                       f"answered {_quote(example.target_answer, 30)}, the references {_quote(example.consensus, 30)}")  # fmt: skip
        categories.append(Category(names[c], description, len(members), total, len(members) / total,
                                   tuple(p.idx for p in typical[:EXAMPLES]), tuple(p.idx for p in members)))  # fmt: skip
    return categories


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / (np.linalg.norm(vector) or 1.0)


def _assign(probes: Sequence[ProbeRecord], centroids: dict[int, np.ndarray], distance: float) -> dict[int, int]:
    """How many valid probes (flagged or not) lie nearest to each category's centre, within
    ``distance``: the denominators of the flag rates."""
    valid = [p for p in probes if p.error is None and p.question]
    named = [c for c in centroids if c != -1]
    if not valid or not named:
        return {}
    similarity = probe_vectors(valid) @ np.stack([centroids[c] for c in named]).T
    nearest = similarity.argmax(axis=1)
    counts: dict[int, int] = {}
    for row, column in enumerate(nearest):
        if 1 - similarity[row, column] <= distance:
            counts[named[column]] = counts.get(named[column], 0) + 1
    return counts
