"""Rectification: turn what the audit finds into training data that fixes the target, then
audit again (the paper's second half; SPEC section 2, seed 004 sections A.3 and A.4).

Each iteration: (1) from the second on, a new auditor is trained by GRPO against the
latest model, from the previous auditor; (2) the auditors (every checkpoint of that
training) write probes on a pool of unlabelled images, each probe answered by the target
and the references, as an audit does; (3) the references' consensus labels them: the pairs
where the target disagrees with it are kept (``keep="all"``: every pair with a consensus),
duplicates dropped, and each question form's answers evened out (the commonest thinned, or
the rarer filled with pairs the target already gets right); (4) they are mixed with the
target's own training data and (5) the latest model is fine-tuned on them; (6) on an
embedded domain's pool, the held-out benchmark measures every skill before and after.
``control`` also fine-tunes a second copy, each iteration, on as many pairs written by the
untrained baseline auditor under the baseline prompts on the same pool, labelled alike: the
paper's "same images without AuditDM".

Every stage writes its output into the run directory before the next starts (generation
runs are audit runs; pairs, models and evaluations are written aside and renamed), so a
run stopped anywhere, even by kill -9, resumes with ``resume_rectify`` where it stopped.
The labels never come from the oracle: it only measures the labels' accuracy afterwards.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from auditdm.audit import AuditConfig, resume_audit, start_audit
from auditdm.backends import ModelSpec, default_references, load_domain
from auditdm.errors import UserError
from auditdm.files import write_text
from auditdm.finetune import FinetuneSettings, finetune
from auditdm.grpo import SETTINGS, GRPOSettings, probe_form, train_auditor
from auditdm.judge import normalize_answer
from auditdm.models import model_options, read_card
from auditdm.qa_data import read_qa_data
from auditdm.records import SYNTHESES, Labelled, Pairing, Synthesis
from auditdm.report.rectification import write_rectification_report
from auditdm.store import DATABASE, RunStore
from auditdm.verify import accuracy_by_skill, is_right, oracle_check

LOG = logging.getLogger(__name__)
CONFIG = "rectify.json"
RESULT = "rectification.json"
RECIPE = "auditor-recipe.json"  # the --auditor-recipe, copied: a resume needs no other folder
KEEP = ("flagged", "all")
BALANCE = ("fill", "thin")
POOL_SEED = 500_000  # the pool's images come from a stream apart from audits, GRPO and the benchmark


@dataclass(frozen=True)
class RectifyConfig:
    """Everything a rectification run depends on; saved in it, so a resume repeats it."""

    target: str = "world:target"
    references: tuple[str, ...] = ()  # empty: the target kind's default references (the world zoo's)
    auditor: str = "world:auditor"  # the first iteration's auditor; later ones are trained by GRPO
    control_auditor: str = "world:baseline"  # the untrained auditor whose pairs train the control
    compare_to: str | None = "world:target-large"  # evaluated beside the target (the paper's 28B)
    pool: str | None = None  # a folder of unlabelled images; None: images of `domain`
    limit: int | None = None  # at most this many images of the pool folder (the first in name order); None: all
    domain: str = "world"
    pool_size: int = 400  # domain images in the pool
    probes: int = 1200  # probes written per iteration, over all its auditors
    # The paths that write the probes; (Q, I*) needs the pool's own questions, which a folder has none of.
    pairings: tuple[Pairing, ...] = ("question", "both")
    syntheses: tuple[Synthesis, ...] = SYNTHESES
    fraction: float = 1.0  # the share of the generated pairs that trains the target (the paper's supp. Table 4)
    keep: str = "flagged"  # which consensus-labelled pairs train the target: flagged, or all
    # At most this many pairs ask the same question (or one MiniLM finds nearly the same) on
    # different images: an auditor that keeps finding one failure would otherwise teach the
    # target one answer (BENCHMARKS.md: 375 of 382 pairs asked "how many green objects ...").
    per_question: int = 10
    # At most this share of the pairs of one question form give the same answer (1: no limit).
    # An auditor's failures lean one way, and pairs that all answer alike teach that answer: 347
    # flagged "is there ..." pairs, 93 % "no", taught a target to say "no" to every such question
    # (hallucination 67 to 52 %, BENCHMARKS.md section 5).
    max_answer_share: float = 0.5
    # How a form's answers are evened out: "thin" drops the commonest; "fill" first adds, to its
    # rarer answers, pairs of the same form that the target already answers right (at most as many
    # as the form has flagged pairs), then thins. Filling gave 2.5x the pairs and no gain where the
    # consensus labels the rarer side badly (BENCHMARKS.md section 5); a user whose references
    # label both sides well may want it.
    balance: str = "thin"
    quorum: int | None = None
    min_confidence: float | None = None
    judge: str = "exact"
    iterations: int = 2
    mix: float = 1.0  # examples of the target's own training data per generated pair
    mix_data: str | None = None  # a dataset to mix in (qa_data formats); None: the target backend's own stream
    epochs: float = 2.0  # fine-tuning passes over each iteration's pairs and mixed-in data
    train_batch_size: int = 16  # the fine-tuning batch
    lr: float = 2e-4
    lora_rank: int = 0
    auditor_steps: int = 300  # GRPO steps of each new auditor (from the second iteration)
    auditor_checkpoints: int = 2  # checkpoints of each new auditor that write probes (the last is final)
    # An auditor training (its folder or settings.json) whose recipe (novelty, crowding, exploration,
    # learning rate, ...) trains each new auditor; None: train-auditor's defaults.
    auditor_recipe: str | None = None
    control: bool = False
    eval_questions: int = 100  # held-out questions per skill (embedded domains only)
    seed: int = 0
    executor: str = "local"  # where the generation audits' models run: this process, or Ray actors ("ray")
    ray_address: str | None = None  # None: a local Ray cluster; "auto" or HOST:PORT: an existing one
    replicas: int = 1  # Ray actors per model
    device: str = "cpu"
    dtype: str | None = None
    batch_size: int = 32  # prompts per forward pass of a model
    max_new_tokens: int | None = None  # the length of the target's and references' answers; None: each backend's
    revision: str | None = None  # the hub revision every hf: hub id loads at; None: its default branch
    trust_remote_code: bool = False  # let hf: models run the code their hub repository holds

    def __post_init__(self) -> None:
        if self.keep not in KEEP:
            raise UserError(f"unknown --keep {self.keep!r} (choose from {', '.join(KEEP)})")
        if self.balance not in BALANCE:
            raise UserError(f"unknown --balance {self.balance!r} (choose from {', '.join(BALANCE)})")
        if min(self.iterations, self.probes, self.pool_size, self.per_question) < 1 or self.epochs <= 0:
            raise UserError("--iterations, --probes, --pool-size and --per-question must be at least 1, "
                            "--epochs above 0")  # fmt: skip
        if not 0 < self.fraction <= 1:
            raise UserError(f"--fraction {self.fraction}: must be above 0 and at most 1")
        if not 0 < self.max_answer_share <= 1:
            raise UserError(f"--max-answer-share {self.max_answer_share}: must be above 0 and at most 1")
        if "image" in self.pairings and self.pool is not None:
            raise UserError("--pairings image asks the pool's own questions, and a folder of images has none (use "
                            "question, both)")  # fmt: skip
        # Any other unknown path or bad inference option, now.
        AuditConfig(pairings=self.pairings, syntheses=self.syntheses, limit=self.limit, **self.executor_options(),
                    **self.inference_options())  # fmt: skip
        if self.auditor_checkpoints < 1 or self.auditor_steps < self.auditor_checkpoints:
            raise UserError("--auditor-checkpoints must be at least 1 and at most --auditor-steps")

    def executor_options(self) -> dict[str, Any]:
        """Where the generation audits' models run, as AuditConfig's fields."""
        return {"executor": self.executor, "ray_address": self.ray_address, "replicas": self.replicas}

    def inference_options(self) -> dict[str, Any]:
        """How its models answer, as AuditConfig's and GRPOSettings' fields."""
        return {**model_options(self), "max_new_tokens": self.max_new_tokens}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RectifyConfig:
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        if "train_batch_size" not in values and "batch_size" in values:  # from before --batch-size meant a forward pass
            values["train_batch_size"] = values.pop("batch_size")
        return cls(**values)


@dataclass(frozen=True)
class Pair:
    """A pseudo-labelled training pair: a probe of a generation run and its consensus answer."""

    run: str  # the generation run directory, relative to the rectification run
    probe: int
    image: str  # the probed image's address in that run
    question: str
    answer: str  # the references' consensus: the pseudo-label
    flagged: bool  # the target disagreed with it
    right: bool | None  # the oracle's check of the label (embedded domains), never used to choose
    skill: str | None
    category: str | None  # the failure category it came from (flagged pairs)


def start_rectify(config: RectifyConfig, out: Path, progress: bool = True) -> dict[str, Any]:
    """Run a new rectification into ``out``; returns ``rectification.json``'s object."""
    if (out / CONFIG).exists():
        raise UserError(f"{out} already holds a rectification: resume it with --resume {out}, or pick another --out")
    # What can be checked before any work is, so that a bad input leaves nothing behind.
    ModelSpec.parse(config.target).folder()  # fine-tuning needs a local folder
    if not config.references:
        default_references(config.target)  # an error for a target kind that has none
    if config.pool is not None:
        from auditdm.sources import IMAGE_SUFFIXES

        pool = Path(config.pool)
        if not pool.is_dir() or not any(p.suffix.lower() in IMAGE_SUFFIXES for p in pool.iterdir()):
            raise UserError(f"{pool}: the pool has no images (expected a folder of {', '.join(IMAGE_SUFFIXES)})")
    if config.mix_data is not None:
        read_qa_data(Path(config.mix_data))
    elif config.mix and _own_data(config, 0) is None:
        LOG.warning("auditdm: %s has no training data of its own that auditdm knows: the fine-tuning mixes "
                    "nothing in (name a dataset with --mix-data, or say --mix 0)", config.target)  # fmt: skip
    recipe = None if config.auditor_recipe is None else GRPOSettings.read(Path(config.auditor_recipe))
    out.mkdir(parents=True, exist_ok=True)
    if recipe is not None:
        _write_json(out / RECIPE, dataclasses.asdict(recipe))
    _write_json(out / CONFIG, dataclasses.asdict(config))
    return _run(config, out, progress)


def resume_rectify(out: Path, progress: bool = True) -> dict[str, Any]:
    """Continue a stopped rectification where it stopped."""
    if not (out / CONFIG).is_file():
        raise UserError(f"{out}: not a rectification run (no {CONFIG})")
    return _run(RectifyConfig.from_dict(json.loads((out / CONFIG).read_text())), out, progress)


def _run(config: RectifyConfig, out: Path, progress: bool) -> dict[str, Any]:
    # Later models are hf: folders: they keep the original target's references.
    config = dataclasses.replace(config, references=config.references or default_references(config.target))
    model, control, auditor = config.target, config.target, config.auditor
    before = _evaluate(config, out / "before.json", config.target)
    compare = _evaluate(config, out / "compare.json", config.compare_to) if config.compare_to else None
    iterations = []
    for i in range(1, config.iterations + 1):
        folder = out / f"iteration-{i}"
        started = time.perf_counter()
        auditors = [auditor] if i == 1 else _train_auditor(config, out, folder / "auditor", auditor, model, progress)
        auditor = auditors[-1]
        pairs = _pairs(config, folder, "generate", auditors, model, None, progress)
        model = _finetune(config, folder / "model", model, pairs, out, progress)
        result = {"iteration": i, "pairs": len(pairs), "label_accuracy": _label_accuracy(pairs),
                  "label_accuracy_by_skill": _label_accuracy_by_skill(pairs),
                  "from_categories": dict(Counter(p.category or "unflagged" for p in pairs).most_common()),
                  **(_evaluate(config, folder / "eval.json", model) or {"overall": None, "per_skill": None})}  # fmt: skip
        if config.control:
            baseline = _pairs(config, folder, "control-generate", [config.control_auditor], control, len(pairs),
                              progress)  # fmt: skip
            control = _finetune(config, folder / "control-model", control, baseline, out, progress)
            result["control"] = _evaluate(config, folder / "control-eval.json", control)
        else:
            result["control"] = None
        result["model"] = model
        result["seconds"] = _seconds(folder, time.perf_counter() - started)
        iterations.append(result)
        _write_json(out / RESULT, _result(config, before, iterations, compare))
        write_rectification_report(out, _result(config, before, iterations, compare))
    return _result(config, before, iterations, compare)


def _result(config: RectifyConfig, before: dict[str, Any] | None, iterations: list[dict[str, Any]],
            compare: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    """The ``rectification.json`` object of SPEC section 6."""
    return {"target": config.target, "before": before, "iterations": iterations,
            "compare_to": {"name": config.compare_to, **compare} if compare else None}  # fmt: skip


def _seconds(folder: Path, spent: float) -> float:
    """Time spent on an iteration, over every session that worked on it."""
    path = folder / "seconds.json"
    total = (json.loads(path.read_text())["seconds"] if path.exists() else 0.0) + spent
    _write_json(path, {"seconds": round(total, 1)})
    return round(total, 1)


def _train_auditor(config: RectifyConfig, out: Path, folder: Path, start: str, target: str,
                   progress: bool) -> list[str]:  # fmt: skip
    """A new auditor trained by GRPO in ``folder`` against ``target`` from ``start``; its checkpoints.
    It trains with the run's recipe (``out``'s copy of --auditor-recipe), else train-auditor's defaults."""
    every = config.auditor_steps // config.auditor_checkpoints
    final = folder / "final"
    if not (final / "model.safetensors").exists():
        recipe = GRPOSettings.read(out / RECIPE) if (out / RECIPE).exists() else GRPOSettings()
        # The auditor's gate is the recipe's unless the labels have one of their own.
        gate = recipe.min_confidence if config.min_confidence is None else config.min_confidence
        settings = dataclasses.replace(recipe, auditor=start, target=target, references=config.references,
                                       quorum=config.quorum, min_confidence=gate, judge=config.judge,
                                       steps=config.auditor_steps, save_every=every, seed=config.seed,
                                       **config.inference_options())  # fmt: skip
        train_auditor(settings, folder, resume=(folder / SETTINGS).exists(), progress=progress)
    steps = [every * k for k in range(1, config.auditor_checkpoints)]
    return [*(str(folder / f"checkpoint-{step}") for step in steps), str(final)]


def _generate(config: AuditConfig, run_dir: Path, progress: bool) -> RunStore:
    """An audit run of the pool, started, resumed, or already done."""
    if (run_dir / "summary.json").exists():
        pass
    elif (run_dir / DATABASE).exists():
        resume_audit(run_dir, progress)
    else:
        start_audit(config, run_dir, progress)
    return RunStore.open(run_dir)


def _pairs(config: RectifyConfig, folder: Path, name: str, auditors: Sequence[str], target: str,
           limit: int | None, progress: bool) -> list[Pair]:  # fmt: skip
    """The pseudo-labelled pairs of an iteration: written once, read back on resume."""
    path = folder / f"{name}-pairs.jsonl"
    if path.exists():
        return [Pair(**json.loads(line)) for line in path.read_text().splitlines()]
    baseline = limit is not None  # the control: the untrained auditor, every labelled pair, as many
    flagged_only = not baseline and config.keep == "flagged"
    fill = flagged_only and config.balance == "fill" and config.max_answer_share < 1
    pairs: list[Pair] = []
    for k, auditor in enumerate(auditors):
        audit = AuditConfig(
            target=target, references=config.references, auditor=auditor, prompts="baseline" if baseline else None,
            pairings=config.pairings, syntheses=config.syntheses, images=config.pool, domain=config.domain,
            image_count=config.pool_size,
            probes=max(1, config.probes // len(auditors)), quorum=config.quorum, min_confidence=config.min_confidence,
            judge=config.judge, seed=POOL_SEED + config.seed, weak_skill_questions=0, limit=config.limit,
            **config.executor_options(), **config.inference_options(),
        )  # fmt: skip
        store = _generate(audit, folder / f"{name}-{k}", progress)
        pairs += _labelled(store, out=folder.parent)
    if flagged_only:
        flagged = _deduplicated([p for p in pairs if p.flagged], config.per_question)
        pairs = flagged + (_spare(pairs, flagged, config.per_question) if fill else [])
    else:
        pairs = _deduplicated(pairs, config.per_question)
    pairs = _balanced(pairs, config.max_answer_share, fill)
    pairs = _spread(pairs, config.fraction) if limit is None else pairs[:limit]
    if not pairs:
        raise UserError(f"no probe of {folder / name}-* reached a consensus{'' if baseline else ' that the target missed'}"
                        " with answers varied enough for --max-answer-share: nothing to train on (a larger --probes "
                        "or --pool-size, --keep all, or a higher --max-answer-share may give some)")
    _write_lines(path, [json.dumps(dataclasses.asdict(p)) for p in pairs])
    return pairs


def _labelled(store: RunStore, out: Path) -> list[Pair]:
    """The store's probes that the references agree on."""
    category_of = {m: c.name for c in store.categories() for m in c.members}
    run = str(store.folder.relative_to(out))
    pairs = []
    for p in store.probes():
        if p.error or p.consensus is None or p.image is None or not p.question:
            continue
        check = oracle_check(p) if p.verifiable else None
        pairs.append(Pair(run, p.idx, p.image, p.question, p.consensus, bool(p.score),
                          is_right(p.consensus, check) if check else None, p.skill, category_of.get(p.idx)))  # fmt: skip
    return pairs


def _spare(pairs: Sequence[Pair], flagged: Sequence[Pair], per_question: int) -> list[Pair]:
    """The unflagged pairs that may fill the flagged forms' rarer answers, deduplicated apart from
    the flagged: a question asked ``per_question`` times with one answer may still be asked with
    the other."""
    asked = {(p.image, normalize_answer(p.question)) for p in flagged}
    unflagged = [p for p in pairs if not p.flagged and (p.image, normalize_answer(p.question)) not in asked]
    return _deduplicated(unflagged, per_question)


def _deduplicated(pairs: Sequence[Pair], per_question: int, similar: float = 0.95) -> list[Pair]:
    """Pairs without repeats: one per image and question, none whose question reads almost
    the same (MiniLM cosine >= ``similar``) as a kept one about the same image, and at most
    ``per_question`` asking nearly the same question across images, first come first kept."""
    from auditdm.embed import embed

    distinct = list({(p.image, normalize_answer(p.question)): p for p in reversed(pairs)}.values())[::-1]
    if not distinct:
        return []
    vectors = embed([p.question for p in distinct])
    close = vectors @ vectors.T >= similar
    kept: list[int] = []
    for i, pair in enumerate(distinct):
        alike = [kept[j] for j in np.flatnonzero(close[i, kept])]
        if len(alike) < per_question and all(distinct[j].image != pair.image for j in alike):
            kept.append(i)
    return [distinct[i] for i in kept]


def _balanced(pairs: Sequence[Pair], share: float, fill: bool = False) -> list[Pair]:
    """The pairs with each question form's answers evened out until none gives more than ``share``
    of the form's pairs: ``fill`` first fills the flagged pairs' rarer answers (``_filled``), then
    the last pairs of the commonest answers are dropped; a form that cannot reach ``share`` (one
    answer only) is dropped whole. Kept pairs keep their order."""
    if share >= 1:
        return list(pairs)
    forms = [probe_form(pair.question) for pair in pairs]
    chosen = _filled(pairs, forms) if fill else [True] * len(pairs)
    by_form: dict[str, Counter[str]] = {}
    for pair, form, keep in zip(pairs, forms, chosen):
        if keep:
            by_form.setdefault(form, Counter())[pair.answer] += 1
    caps = {form: _answer_cap(sorted(counts.values(), reverse=True), share) for form, counts in by_form.items()}
    kept: Counter[tuple[str, str]] = Counter()
    balanced = []
    for pair, form, keep in zip(pairs, forms, chosen):
        key = (form, pair.answer)
        if keep and kept[key] < caps[form]:
            kept[key] += 1
            balanced.append(pair)
    return balanced


def _filled(pairs: Sequence[Pair], forms: Sequence[str]) -> list[bool]:
    """Which pairs fill the flagged ones: every flagged pair, and unflagged pairs of a flagged form
    that raise its rarer answers towards its commonest flagged answer's count, at most as many as
    the form's flagged pairs in all. A form without a flagged pair is left out."""
    counts: dict[str, Counter[str]] = {}
    for pair, form in zip(pairs, forms):
        if pair.flagged:
            counts.setdefault(form, Counter())[pair.answer] += 1
    top = {form: max(answers.values()) for form, answers in counts.items()}
    room = {form: answers.total() for form, answers in counts.items()}
    chosen = [pair.flagged for pair in pairs]
    for i, (pair, form) in enumerate(zip(pairs, forms)):
        if not pair.flagged and room.get(form) and counts[form][pair.answer] < top[form]:
            counts[form][pair.answer] += 1
            room[form] -= 1
            chosen[i] = True
    return chosen


def _answer_cap(counts: Sequence[int], share: float) -> int:
    """The most pairs one answer may keep so that, with every answer capped at it, none gives more
    than ``share`` of the form's pairs (``counts`` from the commonest answer down); 0: none can."""
    for cap in range(counts[0], 0, -1):
        if cap <= share * sum(min(n, cap) for n in counts) + 1e-9:
            return cap
    return 0


def _spread(pairs: Sequence[Pair], fraction: float) -> list[Pair]:
    """A fraction of the pairs, spread evenly over them in their order (every fifth for 0.2)."""
    share = [int(n * fraction + 1e-9) for n in range(len(pairs) + 1)]  # 5 * 0.2 is 1, not 0.99...
    return [pair for i, pair in enumerate(pairs) if share[i + 1] > share[i]]


def _label_accuracy(pairs: Sequence[Pair]) -> float | None:
    checked = [p.right for p in pairs if p.right is not None]
    return sum(checked) / len(checked) if checked else None


def _label_accuracy_by_skill(pairs: Sequence[Pair]) -> dict[str, float]:
    """The oracle's check of the labels, per skill the pairs ask about (embedded domains)."""
    checked: dict[str, list[bool]] = {}
    for pair in pairs:
        if pair.right is not None and pair.skill:
            checked.setdefault(pair.skill, []).append(pair.right)
    return {skill: sum(rights) / len(rights) for skill, rights in sorted(checked.items())}


def _finetune(config: RectifyConfig, out: Path, model: str, pairs: Sequence[Pair], run: Path,
              progress: bool) -> str:  # fmt: skip
    """Fine-tune ``model`` on the pairs mixed with the target's own training data; the new
    model's spec. A finished model folder is kept as it is on resume."""
    if not (out / "model.safetensors").exists():
        from auditdm.sources import read_picture

        examples = [Labelled(read_picture(run / p.run / "images" / p.image[:2] / f"{p.image}.png").image,
                             p.question, p.answer, p.skill or "") for p in pairs]  # fmt: skip
        examples += _original_data(config, round(config.mix * len(examples)))
        settings = FinetuneSettings(epochs=config.epochs, batch_size=config.train_batch_size, lr=config.lr,
                                    lora_rank=config.lora_rank, seed=config.seed, device=config.device,
                                    dtype=config.dtype)  # fmt: skip
        finetune(model, examples, out, settings, progress)
    return f"hf:{out}"


def _original_data(config: RectifyConfig, count: int) -> list[Labelled]:
    """``count`` examples of the data to mix in: the user's dataset (drawn without repeats
    while it lasts, reproducibly), else the target's own training data where its backend has them."""
    if config.mix_data is not None and count:
        data = read_qa_data(Path(config.mix_data))
        order = np.random.default_rng(config.seed).permutation(max(count, len(data))) % len(data)
        return [data[i] for i in order[:count]]
    stream = _own_data(config, 700_000 + config.seed) if count else None
    return list(islice(stream, count)) if stream is not None else []


def _own_data(config: RectifyConfig, seed: int) -> Iterator[Labelled] | None:
    """The target's own training data: that of the domain recipe its card records (a world: model,
    or any folder `auditdm world train` wrote); None if unknown."""
    return load_domain(config.domain).recipe_data(read_card(ModelSpec.parse(config.target).folder()), seed)


def _evaluate(config: RectifyConfig, path: Path, model: str | None) -> dict[str, Any] | None:
    """``model``'s held-out accuracy per skill on the pool's domain (None off the domains)."""
    if model is None or config.pool is not None:
        return None
    if path.exists():
        result: dict[str, Any] = json.loads(path.read_text())
        return result
    from auditdm.models import load_model

    examples = load_domain(config.domain).benchmark(config.eval_questions)
    answers = load_model(model, **config.inference_options()).generate([e.image for e in examples],
                                                                [e.question for e in examples])  # fmt: skip
    per_skill = accuracy_by_skill(examples, answers)
    result = {"overall": sum(per_skill.values()) / len(per_skill), "per_skill": per_skill}
    _write_json(path, result)
    return result


def _write_json(path: Path, data: Any) -> None:
    _write_lines(path, [json.dumps(data, indent=2)])


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    write_text(path, "".join(line + "\n" for line in lines))


def labelled_pairs(out: Path) -> list[tuple[Path, Pair]]:
    """Every generated pair of a rectification run, with its image file (for export)."""
    found = []
    for path in sorted(out.glob("iteration-*/*pairs.jsonl")):
        for line in path.read_text().splitlines():
            pair = Pair(**json.loads(line))
            found.append((out / pair.run / "images" / pair.image[:2] / f"{pair.image}.png", pair))
    return found
