"""GRPO auditor training: the reward is the audit score, steps change the auditor, checkpoints
load as auditors, a killed training resumes where it stopped."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from auditdm.auditor import load_auditor
from auditdm.errors import UserError
from auditdm.exploration import MIN_SEEN, FormExplorer, per_token_extended
from auditdm.grpo import (
    DIVERGED_WINDOW,
    REWARD_STATE,
    AuditReward,
    GRPOSettings,
    check_not_diverged,
    completion_text,
    diverged,
    grpo_config,
    probe_form,
    read_curves,
    train_auditor,
    training_rows,
    training_sources,
)
from auditdm.judge import load_judge, score
from auditdm.models import load_model
from auditdm.panel import Panel
from auditdm.records import SourceImage
from auditdm.world.domain import WORLD
from auditdm.world.synth import WorldSynthesizer
from auditdm.world.zoo.cards import find_model

# Model-comparison mode (one reference) flags often enough that groups disagree within a few steps.
TINY = dict(steps=2, train_batch_size=8, group_size=4, images=4, save_every=1, references=("world:ref-a",))


@pytest.fixture(scope="module")
def panel() -> Panel:
    """Model-comparison mode (one reference), where disagreements are plentiful."""
    return Panel(load_model("world:target"), [load_model("world:ref-a")], load_judge("exact"))


SOURCES: list[SourceImage] = WORLD.images(12, seed=9)


def reward_for(panel: Panel, **options) -> AuditReward:
    return AuditReward(panel, WorldSynthesizer(), SOURCES, memory=options.pop("memory", 8), **options)


def images(n: int) -> list:
    return [s.picture.image for s in SOURCES[:n]]


def test_the_reward_is_the_audit_score(panel) -> None:
    texts = ["what time does the clock show ?", "what number is on the sign ?", "how many circles are there ?",
             "is it day or night ?"] * 3  # fmt: skip
    reward = reward_for(panel, novelty=0.0)
    rewards = reward(prompts=[None] * 12, completions=texts, task=["question"] * 12, source=list(range(12)))
    target = panel.target.generate(images(12), texts)
    reference = panel.references[0].generate(images(12), texts)
    assert rewards == [float(score(t, [r], panel.judge).score) for t, r in zip(target, reference)]
    assert 0 < sum(rewards) < 12  # some probes flagged, some not: the check means something


def test_degenerate_outputs_earn_nothing_and_crash_nothing(panel) -> None:
    reward = reward_for(panel, novelty=0.5)
    texts = ["", "make the moon purple", "a photo of a cat .", [{"role": "assistant", "content": "   "}],
             "how many green objects are question at", ""]  # fmt: skip
    tasks = ["question", "edit", "caption", "question", "question", "caption"]
    assert reward(prompts=[None] * 6, completions=texts, task=tasks, source=list(range(6))) == [0.0] * 6
    errors = [p.error for p in reward.probes([""] * 2, ["caption", "edit"], [0, 1])]
    assert errors == ["invalid caption: the auditor wrote nothing", "invalid edit: the auditor wrote nothing"]


def test_a_question_outside_the_grammar_earns_nothing_where_the_models_disagree(panel) -> None:
    texts = ["how many green objects are question at"] * 12  # noise GRPO learnt to append, 2026-11-26
    target = panel.target.generate(images(12), texts)
    reference = panel.references[0].generate(images(12), texts)
    assert any(score(t, [r], panel.judge).score for t, r in zip(target, reference))  # flagged, were it valid
    reward = reward_for(panel, novelty=0.5)
    assert reward(prompts=[None] * 12, completions=texts, task=["question"] * 12, source=list(range(12))) == [0.0] * 12


def test_novelty_pays_less_for_the_same_failure_again(panel) -> None:
    reward = reward_for(panel, novelty=0.5)
    texts = ["what time does the clock show ?"] * 12
    first = reward(prompts=[None] * 12, completions=texts, task=["question"] * 12, source=list(range(12)))
    flagged = [r for r in first if r >= 1]
    assert flagged and flagged[0] == pytest.approx(1.5) and all(r == pytest.approx(1.0) for r in flagged[1:])


def test_a_novelty_discount_pays_a_failure_found_again_less_than_a_new_one(panel) -> None:
    reward = reward_for(panel, novelty=0.8, novelty_as="discount")
    texts = ["what time does the clock show ?"] * 12
    rewards = reward(prompts=[None] * 12, completions=texts, task=["question"] * 12, source=list(range(12)))
    flagged = [r for r in rewards if r > 0]
    assert len(flagged) > 1 and flagged[0] == pytest.approx(1.0)
    assert all(r == pytest.approx(0.2) for r in flagged[1:])


def test_answer_novelty_pays_less_for_the_same_answer_however_worded(panel) -> None:
    sources = list(range(6)) * 2
    texts = ["how many circles are there ?"] * 6 + ["how many squares are there ?"] * 6
    reward = reward_for(panel, novelty=0.5, memory=16, novelty_of="answer")
    rewards = reward(prompts=[None] * 12, completions=texts, task=["question"] * 12, source=sources)
    _, answers = panel.answer(reward.probes(texts, ["question"] * 12, sources))
    flagged = [(a.consensus, r) for a, r in zip(answers, rewards) if a and a.score]
    repeats = [r for i, (answer, r) in enumerate(flagged) if answer in [a for a, _ in flagged[:i]]]
    assert flagged[0][1] == pytest.approx(1.5) and repeats  # the data holds a repeated answer
    assert all(r == pytest.approx(1.0) for r in repeats)  # worded differently or not, nothing more


@pytest.mark.parametrize("power", [1.0, 3.0])
def test_form_novelty_shares_the_reward_of_a_form_however_worded(panel, power) -> None:
    texts = ["how many circles are there ?", "how many red squares are there ?", "what time does the clock show ?",
             "how many objects are there ?"] * 3  # fmt: skip
    reward = reward_for(panel, novelty=1.0, novelty_as="discount", memory=16, novelty_of="form", novelty_power=power)
    rewards = reward(prompts=[None] * 12, completions=texts, task=["question"] * 12, source=list(range(12)))
    _, answers = panel.answer(reward.probes(texts, ["question"] * 12, list(range(12))))
    flagged = [(probe_form(t), r) for t, a, r in zip(texts, answers, rewards) if a and a.score]
    assert {f for f, _ in flagged} >= {"how many", "what time"}  # the data flags both forms
    for i, (form, r) in enumerate(flagged):  # each flag pays (1 - its form's share among the earlier ones) ** power
        earlier = [f for f, _ in flagged[:i]]
        assert r == pytest.approx((1 - earlier.count(form) / len(earlier)) ** power if earlier else 1.0)


def charged_again(reward: AuditReward, scores: list[float], texts: list[str], tasks: list[str]) -> list[float]:
    """What each probe is charged when the same probes are written again, against their scores."""
    rewards = reward(prompts=[None] * len(texts), completions=texts, task=tasks, source=list(range(len(texts))))
    return [s - r for s, r in zip(scores, rewards)]


def test_crowding_charges_each_probe_the_share_of_its_form_and_one_without_a_consensus_the_most(panel) -> None:
    texts = ["how many circles are there ?"] * 6 + ["what time does the clock show ?"] * 2 + ["make it night"] * 3 \
        + ["how many green objects are question at"]  # fmt: skip
    tasks = ["question"] * 8 + ["edit"] * 3 + ["question"]
    reward = reward_for(panel, novelty=0.0, memory=16, crowding=0.5)
    plain = reward_for(panel, novelty=0.0)
    first = reward(prompts=[None] * 12, completions=texts, task=tasks, source=list(range(12)))
    scores = plain(prompts=[None] * 12, completions=texts, task=tasks, source=list(range(12)))
    assert first[:11] == scores[:11]  # nothing remembered yet: no form is crowded
    assert first[11] == pytest.approx(-0.5)  # outside the grammar: charged the whole weight
    charged = charged_again(reward, scores, texts, tasks)
    # Shares among the valid probes remembered per path: questions 6 "how many" and 2 "what time", edits 3 alike.
    assert charged == pytest.approx([0.5 * 6 / 8] * 6 + [0.5 * 2 / 8] * 2 + [0.5] * 3 + [0.5])
    unsure = reward_for(dataclasses.replace(panel, min_confidence=1.0), novelty=0.0, crowding=0.5)
    rewards = unsure(prompts=[None] * 12, completions=texts, task=tasks, source=list(range(12)))
    assert rewards == [-0.5] * 12  # no reference sure enough, no consensus: charged as if invalid
    assert not any(unsure.written["form"].values())  # and not remembered as written


def test_a_training_whose_probes_stop_being_valid_is_called_diverged_naming_the_checkpoint_before(tmp_path) -> None:
    window = DIVERGED_WINDOW
    assert not diverged([0.65] * window + [0.92] * 3 * window)  # the baseline's validity, then learnt
    assert not diverged([0.9] * window + [0.1] * (window - 1))  # too few steps to tell
    assert not diverged([0.9] * 2 * window + [0.1] * (window // 3))  # a dip, not yet half of the best
    collapsed = [0.7] * window + [0.9] * 2 * window + [0.1] * window  # a run that wrote garbage from then on
    assert diverged(collapsed)
    for step in (100, 150, 200):
        (tmp_path / f"checkpoint-{step}").mkdir()
    check_not_diverged(tmp_path, 200, collapsed[:-window])  # nothing to say before
    with pytest.raises(UserError, match=rf"stopped at step 200: .* 10 % .* against 90 % at best\. "
                                        rf".*checkpoint-150 is the last checkpoint before it"):  # fmt: skip
        check_not_diverged(tmp_path, 200, collapsed)


@pytest.mark.parametrize("novelty_of", ["form", "probe"])
def test_a_reward_restored_from_its_saved_state_pays_as_the_one_never_stopped(panel, novelty_of) -> None:
    texts = ["how many circles are there ?", "is there a red circle ?", "what time does the clock show ?",
             "make it night", "is it day or night ?", "how many green objects are there ?"] * 2  # fmt: skip
    tasks = ["question"] * 3 + ["edit"] + ["question"] * 2
    tasks *= 2

    def fresh() -> AuditReward:
        return reward_for(panel, novelty=1.0, novelty_of=novelty_of, novelty_as="discount", memory=16, crowding=0.5,
                          crowding_of="probe+form:0.5", explorer=FormExplorer(0.5, 4, "auditdm", 0))  # fmt: skip

    def pay(reward: AuditReward) -> list[float]:
        return reward(prompts=[None] * len(texts), completions=texts, task=tasks, source=list(range(len(texts))))

    running, restored = fresh(), fresh()
    first = pay(running)
    restored.restore(json.loads(json.dumps(running.state())))  # through the checkpoint's file format
    resumed, again = pay(restored), pay(running)
    assert resumed == pytest.approx(again)
    assert resumed != pytest.approx(first)  # the memories change what the same probes earn
    assert restored.explorer.forms(tasks) == running.explorer.forms(tasks)
    assert restored.validity == running.validity


def test_a_valid_probe_without_a_consensus_can_pay_what_the_most_crowded_probe_pays(panel) -> None:
    texts = ["how many circles are there ?", "what time does the clock show ?",
             "how many green objects are question at"]  # fmt: skip
    unsure = reward_for(dataclasses.replace(panel, min_confidence=1.0), novelty=0.0, memory=16, crowding=0.5,
                        no_consensus_charge="crowded")  # fmt: skip
    unsure.written["form"]["question"].extend(["how many"] * 3 + ["what time"])  # the path's memory so far
    rewards = unsure(prompts=[None] * 3, completions=texts, task=["question"] * 3, source=[0, 1, 2])
    # No reference is sure enough: the two valid questions pay the share of "how many", the invalid one the whole.
    assert rewards == pytest.approx([-0.5 * 3 / 4] * 2 + [-0.5])
    assert list(unsure.written["form"]["question"]) == ["how many"] * 3 + ["what time"]  # nothing new written


def test_crowding_by_answer_charges_each_probe_the_share_of_its_consensus_answer(panel) -> None:
    texts = ["is there a green object ?", "is there a red circle ?", "is there a tiny star ?",
             "how many circles are there ?", "what color is the circle ?", "is it day or night ?"] * 2  # fmt: skip
    tasks, sources = ["question"] * 12, list(range(12))
    reward = reward_for(panel, novelty=0.0, memory=16, crowding=0.5, crowding_of="answer")
    scores = reward_for(panel, novelty=0.0)(prompts=[None] * 12, completions=texts, task=tasks, source=sources)
    assert reward(prompts=[None] * 12, completions=texts, task=tasks, source=sources) == scores  # nothing remembered
    _, answers = panel.answer(reward.probes(texts, tasks, sources))
    consensus = [a.consensus if a is not None else None for a in answers]
    agreed = [c for c in consensus if c is not None]
    # The data has questions worded apart whose answers are alike ("no"), and an answer only one has.
    assert max(map(agreed.count, agreed)) >= 3 and min(map(agreed.count, agreed)) == 1
    charged = charged_again(reward, scores, texts, tasks)
    assert charged == pytest.approx([0.5 * agreed.count(c) / len(agreed) if c is not None else 0.5 for c in consensus])


def test_crowding_by_probe_charges_one_question_asked_again_not_the_others_of_its_form(panel) -> None:
    texts = ["is there a green object ?"] * 6 + ["is there a red circle ?", "Is there  a red circle ?"]
    tasks, sources = ["question"] * 8, list(range(8))
    reward = reward_for(panel, novelty=0.0, memory=16, crowding=0.5, crowding_of="probe")
    scores = reward_for(panel, novelty=0.0)(prompts=[None] * 8, completions=texts, task=tasks, source=sources)
    reward(prompts=[None] * 8, completions=texts, task=tasks, source=sources)
    _, answers = panel.answer(reward.probes(texts, tasks, sources))
    assert all(a is not None and a.consensus is not None for a in answers)  # all remembered as written
    charged = charged_again(reward, scores, texts, tasks)
    assert charged == pytest.approx([0.5 * 6 / 8] * 6 + [0.5 * 2 / 8] * 2)  # alike by the words, not their case
    both = reward_for(panel, novelty=0.0, memory=16, crowding=0.5, crowding_of="form+probe")
    both(prompts=[None] * 8, completions=texts, task=tasks, source=sources)
    charged = charged_again(both, scores, texts, tasks)
    assert charged == pytest.approx([0.5 + 0.5 * 6 / 8] * 6 + [0.5 + 0.5 * 2 / 8] * 2)  # one form, charged as well
    shared = reward_for(panel, novelty=0.0, memory=16, crowding=0.5, crowding_of="probe+form:0.25")
    shared(prompts=[None] * 8, completions=texts, task=tasks, source=sources)
    charged = charged_again(shared, scores, texts, tasks)
    assert charged == pytest.approx([0.25 * 0.5 + 0.5 * 6 / 8] * 6 + [0.25 * 0.5 + 0.5 * 2 / 8] * 2)  # form: 1/4


def test_exploration_gives_the_first_probes_of_each_group_a_form_written_before() -> None:
    explorer = FormExplorer(share=0.25, group_size=4, prompts="auditdm", seed=0)
    assert explorer.forms(["question"] * 8) == [""] * 8  # nothing written yet: the auditor's own words
    for form in ["how many"] * MIN_SEEN + ["is there"]:  # "is there" once: a slip, not yet a form
        explorer.record("question", form)
    assert explorer.forms(["question"] * 8) == ["how many", "", "", "", "how many", "", "", ""]
    assert explorer.forms(["edit"] * 4) == [""] * 4  # each path has its own forms


def test_per_token_fields_cover_the_given_words_and_others_stay() -> None:
    pixels = [[0.5, 0.5, 0.5], [0.1]]  # per image: one row matches its ids in length, not every row
    fields = {"token_type_ids": [[1, 1, 0], [1, 0]], "pixel_values": pixels}
    extended = per_token_extended(fields, [[7, 7, 3], [7, 3]], [[35, 36], []])
    assert extended["token_type_ids"] == [[1, 1, 0, 0, 0], [1, 0]]
    assert extended["pixel_values"] is pixels


@pytest.mark.filterwarnings("ignore:You are using 'rollout_func'")
def test_an_explored_probe_starts_with_its_form_and_the_auditor_writes_the_rest(tmp_path) -> None:
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText
    from trl import GRPOTrainer

    from auditdm.models.hf import load_processor

    settings = GRPOSettings(**{**TINY, "steps": 1}, tasks=("question",), explore=0.5)
    explorer = FormExplorer(settings.explore, settings.group_size, settings.prompts, settings.seed)
    for _ in range(MIN_SEEN):
        explorer.record("question", "what shape")
    written: list[str] = []

    def reward(completions: list[object], **_: object) -> list[float]:
        written.extend(completion_text(c) for c in completions)
        return [float(i % 2) for i in range(len(completions))]

    path = find_model("baseline").path
    trainer = GRPOTrainer(model=AutoModelForImageTextToText.from_pretrained(path), reward_funcs=[reward],
                          args=grpo_config(settings, tmp_path, progress=False), processing_class=load_processor(path),
                          train_dataset=Dataset.from_list(training_rows(settings, training_sources(settings))),
                          rollout_func=explorer.rollout)  # fmt: skip
    trainer.train()
    given = [text for i, text in enumerate(written) if i % settings.group_size < 2]
    assert len(written) == settings.train_batch_size and all(t.startswith("what shape ") for t in given)
    assert all(len(t.split()) > 2 for t in given)  # the auditor went on writing


@pytest.mark.slow
def test_a_step_changes_the_auditor_and_checkpoints_are_auditors(tmp_path) -> None:
    final = train_auditor(GRPOSettings(**TINY), tmp_path / "run", progress=False)
    before = load_file(find_model("baseline").path / "model.safetensors")
    after = load_file(final / "model.safetensors")
    assert any(not before[name].equal(after[name]) for name in before)
    checkpoint = tmp_path / "run" / "checkpoint-1"
    auditor = load_auditor(str(checkpoint))
    image = WORLD.images(1, seed=0)[0].picture.image
    assert auditor.prompts == "auditdm" and len(auditor.write([image], "question", 0)) == 1
    assert set(read_curves(tmp_path / "run")) == {"reward", "flag_rate", "validity", "diversity"}
    card = json.loads((final / "auditdm.json").read_text())
    assert card["curves"]["GRPO reward"]
    # The forms the explorer knew at the end, for an audit's --explore.
    seen = json.loads((tmp_path / "run" / "checkpoint-2" / REWARD_STATE).read_text())["explorer"]["seen"]
    assert card["forms"] == {task: sorted(f for f, n in forms.items() if n >= MIN_SEEN) for task, forms in seen.items()}


@pytest.mark.slow
def test_a_killed_training_resumes_from_its_last_checkpoint(tmp_path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "auditdm.cli", "train-auditor", "-o", str(out), "--steps", "6",
               "--train-batch-size", "8", "--group-size", "4", "--images", "4", "--save-every", "2",
               "--references", "world:ref-a"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (out / "checkpoint-2" / "auditdm.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "final").exists(), "the kill should land before the end"
    resumed = subprocess.run([sys.executable, "-m", "auditdm.cli", "train-auditor", "-o", str(out), "--resume"],
                             env=env, capture_output=True, text=True)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    state = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    curves = [json.loads(line) for line in (out / "curves.jsonl").read_text().splitlines()]
    assert [row["step"] for row in curves] == list(range(1, 7))  # every step logged once
    assert (out / "final" / "model.safetensors").exists()
    # The reward's memories come back with the checkpoint: the resumed run's next checkpoint remembers
    # the steps before the kill as well as its own.
    saved, after = (json.loads((out / f"checkpoint-{n}" / REWARD_STATE).read_text()) for n in (2, 4))
    assert len(saved["validity"]) == 2 and after["validity"][:2] == saved["validity"] and len(after["validity"]) == 4
    assert all(after["explorer"]["seen"][task].get(form, 0) >= count
               for task, forms in saved["explorer"]["seen"].items() for form, count in forms.items())  # fmt: skip


def test_the_reward_scaling_reaches_trl(tmp_path) -> None:
    assert grpo_config(GRPOSettings(), tmp_path, progress=False).scale_rewards == "batch"
    assert grpo_config(GRPOSettings(scale_rewards="group"), tmp_path, progress=False).scale_rewards == "group"
    resumed = GRPOSettings.from_dict({"steps": 10})  # saved before the scaling was a setting: trained by group
    assert grpo_config(resumed, tmp_path, progress=False).scale_rewards == "group"


def test_bad_settings_are_clear(tmp_path) -> None:
    with pytest.raises(UserError, match="multiple of --group-size"):
        GRPOSettings(train_batch_size=10, group_size=4)
    with pytest.raises(UserError, match="unknown path"):
        GRPOSettings(tasks=("dance",))  # type: ignore[arg-type]
    with pytest.raises(UserError, match="unknown novelty measure"):
        GRPOSettings(novelty_of="image")
    with pytest.raises(UserError, match="unknown novelty form"):
        GRPOSettings(novelty_as="surprise")
    with pytest.raises(UserError, match="unknown reward scaling"):
        GRPOSettings(scale_rewards="rank")
    with pytest.raises(UserError, match="--crowding -1: must be at least 0"):
        GRPOSettings(crowding=-1)
    with pytest.raises(UserError, match="unknown --no-consensus-charge 'half'"):
        GRPOSettings(no_consensus_charge="half")
    with pytest.raises(UserError, match="--novelty-power 0: must be above 0"):
        GRPOSettings(novelty_power=0)
    for measures in ("image", "probe+probe", "probe+form:"):
        with pytest.raises(UserError, match=f"--crowding-of {re.escape(measures)}: .*(not a measure|above 0)"):
            GRPOSettings(crowding_of=measures)
    for share in ("0", "-1", "nan", "a"):
        with pytest.raises(UserError, match="the share of form must be a number above 0"):
            GRPOSettings(crowding_of=f"probe+form:{share}")
    with pytest.raises(UserError, match="--explore 2: a share of each group"):
        GRPOSettings(explore=2)
    with pytest.raises(UserError, match="a discount must be between 0 and 1"):
        GRPOSettings(novelty=1.5, novelty_as="discount")
    with pytest.raises(UserError, match="--min-confidence 0: must be above 0"):
        GRPOSettings(min_confidence=0)
    with pytest.raises(UserError, match="no auditor training to resume"):
        train_auditor(GRPOSettings(), tmp_path, resume=True)
    with pytest.raises(UserError, match="--quorum 9"):  # found when the models load: no folder is left behind
        train_auditor(GRPOSettings(quorum=9), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_curves_file_is_plain_jsonl(tmp_path: Path) -> None:
    (tmp_path / "curves.jsonl").write_text('{"step": 1, "reward": 0.5}\n{"step": 2, "reward": 1.0}\n')
    assert read_curves(tmp_path) == {"reward": [0.5, 1.0]} and read_curves(tmp_path, upto=1) == {"reward": [0.5]}


def test_an_image_folder_trains_on_questions_only(tmp_path) -> None:
    """A folder's images have no original question, so only the question path applies to them."""
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (40, 30), (80 * i, 90, 200)).save(folder / f"{i}.jpg")
    settings = GRPOSettings(image_folder=str(folder))
    rows = training_rows(settings, training_sources(settings))
    assert sorted(r["source"] for r in rows) == [0, 1, 2] and {r["task"] for r in rows} == {"question"}
    world = GRPOSettings(images=2)
    assert len(training_rows(world, training_sources(world))) == 2 * 3  # every path of every world image


@pytest.mark.slow
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU (none in CI)")
def test_a_step_on_the_gpu(tmp_path) -> None:
    final = train_auditor(GRPOSettings(**TINY, device="cuda", dtype="bfloat16"), tmp_path / "run", progress=False)
    assert (final / "model.safetensors").exists()
