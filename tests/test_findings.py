"""Failure categories on a small hand-made set of failures: grouping, names, flag rates."""

from __future__ import annotations

import pytest
from factories import probe_record

from auditdm.findings import OTHER, find_categories, name_clusters
from auditdm.records import ProbeRecord, distinct_probes

pytestmark = pytest.mark.slow  # loads MiniLM


def probe(idx: int, question: str, consensus: str, target: str, score: int = 1) -> ProbeRecord:
    return probe_record(idx=idx, question=question, consensus=consensus, target_answer=target, score=score)


FAILURES = [
    probe(0, "what time does the clock show ?", "3:30", "5:00"),
    probe(1, "what time does the large clock show ?", "9:00", "3:00"),
    probe(2, "what time does the clock at the top show ?", "11:30", "3:00"),
    probe(3, "how many circles are there ?", "2", "4"),
    probe(4, "how many red objects are there ?", "3", "1"),
    probe(5, "how many stars are there ?", "0", "2"),
    probe(6, "what color is the tiny star ?", "red", "blue"),
    probe(7, "what color is the small circle ?", "green", "yellow"),
    probe(8, "what color is the tiny diamond ?", "purple", "orange"),
]
PASSED = [  # answered right: not flagged, but they count in the flag rates
    probe(9, "what color is the large square ?", "red", "red", score=0),
    probe(10, "what color is the star ?", "blue", "blue", score=0),
    probe(11, "what color is the tiny circle ?", "green", "green", score=0),
]
GROUPS = {"clock": {0, 1, 2}, "counting": {3, 4, 5}, "color": {6, 7, 8}}


def test_failures_group_by_kind_with_names_and_rates() -> None:
    categories = find_categories(FAILURES + PASSED)
    assert sorted((set(c.members) for c in categories), key=min) == sorted(GROUPS.values(), key=min)
    by_group = {group: next(c for c in categories if set(c.members) == members) for group, members in GROUPS.items()}
    assert by_group["clock"].name.startswith("what time does the")
    assert by_group["counting"].name.startswith("how many")
    assert by_group["color"].name.startswith("what color is the")
    assert by_group["clock"].flag_rate == 1.0
    assert by_group["color"].probes == 6 and by_group["color"].flag_rate == 0.5
    for category in categories:
        assert set(category.examples) <= set(category.members) and category.description


def test_a_repeated_probe_counts_once() -> None:
    same = [probe_record(idx=i, question="how many circles are there ?", image="abc", consensus="2", target_answer="4",
                         score=1) for i in range(20, 23)]  # fmt: skip
    assert distinct_probes(same + FAILURES) == same[:1] + FAILURES
    categories = find_categories(FAILURES + PASSED + same)
    counting = next(c for c in categories if 3 in c.members)
    assert counting.size == 4 and not {21, 22} & set(counting.members)


def test_a_lone_failure_is_pooled_as_other() -> None:
    lone = probe(12, "is it day or night ?", "night", "day")
    categories = find_categories(FAILURES + [lone])
    assert categories[-1].name == OTHER and categories[-1].members == (12,)


def test_no_flagged_probe_no_category() -> None:
    assert find_categories(PASSED) == []


def test_names_from_shared_openings_and_distinctive_words() -> None:
    names = name_clusters(["how many circles are there ?", "how many circles are here ?", "what is the weather ?"],
                          [0, 0, 1])  # fmt: skip
    assert names == {0: "how many circles are", 1: "what is the weather"}  # no other distinctive word
    assert name_clusters(["how many circles are there ?", "how many red stars are there ?"], [0, 0]) == {
        0: "how many … circles"}  # fmt: skip
