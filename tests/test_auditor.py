"""The auditor: the shipped world baseline writes valid probes; backends and prompts by name."""

from __future__ import annotations

import pytest

from auditdm.auditor import load_auditor
from auditdm.errors import SynthesisError, UserError
from auditdm.prompts import PROMPTS
from auditdm.world.domain import WORLD
from auditdm.world.synth import WorldSynthesizer
from auditdm.world.parse import ParseError, parse_question
from auditdm.world.zoo.cards import find_model
from factories import auditor_with_forms


@pytest.fixture(scope="module")
def written() -> dict[str, list[str]]:
    auditor = load_auditor("world:baseline")
    images = [s.picture.image for s in WORLD.images(24, seed=5)]
    return {task: auditor.write(images, task, seed=1) for task in ("question", "caption", "edit")}  # type: ignore[misc]


def valid_share(texts: list[str], check) -> float:
    ok = 0
    for text in texts:
        try:
            check(text)
            ok += 1
        except (ParseError, SynthesisError):
            pass
    return ok / len(texts)


def test_baseline_writes_mostly_valid_world_sentences(written) -> None:
    sources = WORLD.images(24, seed=5)
    synth = WorldSynthesizer()
    assert valid_share(written["question"], parse_question) >= 0.7
    assert valid_share(written["caption"], lambda c: synth.generate(c, seed=0)) >= 0.4
    edits = [lambda e, s=s: synth.edit(s.picture, e, seed=0) for s in sources]
    # Edits must also name what the image holds, unambiguously: the hardest task (5 of 24
    # here; an untrained model writes none).
    assert sum(valid_share([e], check) for e, check in zip(written["edit"], edits)) / 24 >= 0.15
    assert len(set(written["question"])) > 6  # it samples, so it does not repeat one question


def test_sampling_is_reproducible_from_the_seed() -> None:
    auditor = load_auditor("world:baseline")
    images = [s.picture.image for s in WORLD.images(4, seed=5)]
    first = auditor.write(images, "question", seed=3)
    assert auditor.write(images, "question", seed=3) == first
    assert auditor.write(images, "question", seed=4) != first


def test_backends_and_prompt_sets() -> None:
    assert load_auditor("world:baseline").prompts == "baseline"  # what its card says it was trained for
    folder = find_model("baseline").path
    hf = load_auditor(f"hf:{folder}")  # the folder's card says which prompts it was trained for
    assert hf.prompts == "baseline" and hf.name.startswith("hf:")
    assert load_auditor(str(folder), prompts="auditdm").prompts == "auditdm"  # a bare folder works too
    assert set(PROMPTS) == {"auditdm", "baseline"} and all(len(p) == 3 for p in PROMPTS.values())
    for spec, message in (("nope", "unknown auditor"), ("world:ref-a", "not an auditor"),
                          ("world:nobody", "no world model named")):  # fmt: skip
        with pytest.raises(UserError, match=message):
            load_auditor(spec)
    with pytest.raises(UserError, match="unknown prompt set"):
        load_auditor("world:baseline", prompts="clever")


FORMS = {"question": ["what color", "how many"], "caption": ["a large"]}


def test_explored_texts_start_with_a_form_of_the_card_and_the_auditor_writes_the_rest(tmp_path) -> None:
    folder = auditor_with_forms(tmp_path / "auditor", FORMS)
    images = [s.picture.image for s in WORLD.images(40, seed=5)]
    own = load_auditor(str(folder)).write(images, "question", seed=2)
    half = load_auditor(str(folder), explore=0.5)
    texts = half.write(images, "question", seed=2)
    assert half.write(images, "question", seed=2) == texts  # the draws are the seed's too
    started = [t for t in texts if t.split()[:2] in (["what", "color"], ["how", "many"])]
    assert 10 <= len(started) <= 32 and sum(t.startswith("how many") for t in own) < len(started)
    assert all(len(t.split()) > 2 for t in started)  # the auditor wrote on
    assert valid_share(started, parse_question) >= 0.5  # and what it wrote follows the words
    every = load_auditor(str(folder), explore=1.0).write(images, "caption", seed=2)
    assert all(t.startswith("a large ") for t in every)
    assert load_auditor(str(folder), explore=1.0).write(images[:4], "edit", seed=2) == \
        load_auditor(str(folder)).write(images[:4], "edit", seed=2)  # no form known for edits: its own words


def test_exploring_needs_forms_and_a_share() -> None:
    with pytest.raises(UserError, match="world:baseline lists no forms"):
        load_auditor("world:baseline", explore=0.25)
    with pytest.raises(UserError, match="--explore 1.5: a share"):
        load_auditor("world:baseline", explore=1.5)
