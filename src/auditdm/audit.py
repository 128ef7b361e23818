"""The audit: the auditor writes probes, the target and references answer, the judge scores.

For every probe the target's answer is compared with the references' consensus (score
s = 1 when they differ, SPEC section 2); on world images the oracle then verifies what was
flagged. Probes are made and committed in batches of ``batch_size``: each batch is drawn
from seeds of its own, so a resumed run redoes an interrupted batch exactly as an
uninterrupted run would have done it.
"""

from __future__ import annotations

import dataclasses
import json
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from auditdm.auditor import Auditor, load_auditor
from auditdm.errors import UserError
from auditdm.questions import question_error
from auditdm.records import PAIRINGS, SYNTHESES, Pairing, Probe, SourceImage, Synthesis, Task
from auditdm.scoring import Scorer, load_scorer
from auditdm.store import RunStore
from auditdm.summary import summarize
from auditdm.synth import Synthesizer, SynthesisError, load_synthesizer
from auditdm.verify import check

SUMMARY = "summary.json"


@dataclass(frozen=True)
class AuditConfig:
    """Everything that decides an audit's probes; saved in the run, so a resume repeats it."""

    target: str = "world:target"
    references: tuple[str, ...] = ()  # empty: every reference of the world zoo
    auditor: str = "world:auditor"  # GRPO-trained; world:baseline is the untrained baseline
    prompts: str | None = None  # prompt set; None: the auditor's own
    pairings: tuple[Pairing, ...] = PAIRINGS
    syntheses: tuple[Synthesis, ...] = SYNTHESES
    synthesizer: str = "world"
    images: str | None = None  # a folder of images; None: world images
    image_count: int = 40  # world images, when no folder is given
    probes: int = 200
    quorum: int | None = None  # references that must agree; None: all
    min_confidence: float | None = None  # a reference less sure of its answer abstains; None: none do
    judge: str = "exact"
    temperature: float = 1.0  # the auditor's sampling temperature
    seed: int = 0
    batch_size: int = 50  # probes per committed batch
    weak_skill_questions: int = 100  # per skill, to find the target's weak skills (world models only)
    device: str = "cpu"  # where every model runs ("cuda:0", ...)
    dtype: str | None = None  # "bfloat16", ...; None keeps each model's saved dtype

    def __post_init__(self) -> None:
        if self.probes < 1 or self.batch_size < 1 or self.image_count < 1:
            raise UserError("--probes, --images-count and --batch-size must be at least 1")
        for name, given, known in (("pairing", self.pairings, PAIRINGS), ("synthesis", self.syntheses, SYNTHESES)):
            unknown = [g for g in given if g not in known]
            if unknown or not given:
                raise UserError(f"unknown {name} {', '.join(unknown) or '(none given)'} (choose from {', '.join(known)})")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditConfig:
        tuples = {"references", "pairings", "syntheses"}
        values: dict[str, Any] = {k: tuple(v) if k in tuples else v for k, v in data.items()}
        return cls(**values)


@dataclass
class Audit:
    """What an audit runs with: the loaded models, the images, and where it stores."""

    config: AuditConfig
    store: RunStore
    auditor: Auditor
    scorer: Scorer  # its clock also times the auditor: all model calls
    synthesizer: Synthesizer
    sources: list[SourceImage]


def start_audit(config: AuditConfig, out: Path, progress: bool = True) -> dict[str, Any]:
    """Run a new audit into ``out``; returns its summary (also saved as summary.json)."""
    from auditdm.sources import folder_images, world_images

    RunStore.check_new(out)
    sources = folder_images(Path(config.images)) if config.images else world_images(config.image_count, config.seed)
    config, (auditor, scorer, synthesizer) = _load(config)
    weak = _weak_skills(config, scorer, progress)
    meta = {"config": dataclasses.asdict(config), "weak_skills": weak, "seconds": 0.0,
            "auditor_curves": getattr(auditor, "curves", {})}  # fmt: skip
    store = RunStore.create(out, meta)
    store.add_sources(sources)
    return _run(Audit(config, store, auditor, scorer, synthesizer, sources), progress)


def resume_audit(run_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Continue a stopped audit where it stopped; returns the summary of the whole run."""
    store = RunStore.open(run_dir)
    config, models = _load(AuditConfig.from_dict(store.meta()["config"]))
    return _run(Audit(config, store, *models, sources=store.sources()), progress)


def _load(config: AuditConfig) -> tuple[AuditConfig, tuple[Auditor, Scorer, Synthesizer]]:
    """Load every model the audit needs (first errors first: a bad name fails in seconds);
    the config comes back with its references named."""
    synthesizer = load_synthesizer(config.synthesizer)
    placement = {"device": config.device, "dtype": config.dtype}
    scorer = load_scorer(config.target, config.references, config.judge, config.quorum, config.min_confidence,
                         **placement)  # fmt: skip
    config = dataclasses.replace(config, references=tuple(r.name for r in scorer.references))
    auditor = load_auditor(config.auditor, prompts=config.prompts, temperature=config.temperature, **placement)
    return config, (auditor, scorer, synthesizer)


def _weak_skills(config: AuditConfig, scorer: Scorer, progress: bool) -> list[str] | None:
    """The target's weak skills on the held-out benchmark, when all models are world models
    (the only ones the world benchmark is meant for); None otherwise."""
    if not all(spec.startswith("world:") for spec in (config.target, *config.references)):
        return None
    from auditdm.world.zoo.evaluate import target_weak_skills

    if progress:
        print(f"finding the weak skills of {config.target} ({config.weak_skill_questions} held-out questions per skill)")
    return target_weak_skills(scorer.target, scorer.references, config.weak_skill_questions)


def _combinations(config: AuditConfig, source: SourceImage) -> list[tuple[Pairing, Synthesis | None]]:
    """The (pairing, synthesis) kinds of probe an image allows, in a fixed order."""
    kinds: list[tuple[Pairing, Synthesis | None]] = []
    for pairing in config.pairings:
        if pairing == "question":
            kinds.append(("question", None))
        elif pairing == "both" or source.question is not None:  # (Q, I*) needs an original question
            kinds += [(pairing, synthesis) for synthesis in config.syntheses]
    return kinds


def plan_probe(audit: Audit, index: int) -> Probe:
    """Probe ``index``: images in turn; each image's kinds of probe in turn, starting at a
    different kind for each image, so that a single pass over the images mixes every kind."""
    count = len(audit.sources)
    source = audit.sources[index % count]
    kinds = _combinations(audit.config, source)
    if not kinds:
        raise UserError(f"{source.name}: none of the pairings {', '.join(audit.config.pairings)} applies "
                        "to an image without an original question; include 'question' or 'both'")  # fmt: skip
    pairing, synthesis = kinds[(index // count + index % count) % len(kinds)]
    return Probe(index, index % count, pairing, synthesis, parent_image="", seed=_seed(audit.config.seed, "probe", index),
                 picture=source.picture, question=source.question if pairing == "image" else None)  # fmt: skip


def _seed(*parts: object) -> int:
    return zlib.crc32(":".join(map(str, parts)).encode())


def run_batch(audit: Audit, batch: int, probes: list[Probe]) -> None:
    """Make, answer, score and check a batch of planned probes, in place."""
    seed = audit.config.seed
    for synthesis in SYNTHESES:  # the auditor writes captions and commands from the original image
        group = [p for p in probes if p.synthesis == synthesis]
        texts = _write(audit, group, synthesis, _seed(seed, batch, synthesis))
        for probe, text in zip(group, texts):
            probe.instruction = text
            assert probe.picture is not None
            try:
                if synthesis == "caption":
                    probe.picture = audit.synthesizer.generate(text, probe.seed)
                else:
                    probe.picture = audit.synthesizer.edit(probe.picture, text, probe.seed)
            except SynthesisError as error:
                probe.error, probe.picture = f"invalid {synthesis}: {error}", None
    asking = [p for p in probes if p.pairing != "image" and p.error is None]  # the paper's Q* = A(I', p_q)
    for probe, question in zip(asking, _write(audit, asking, "question", _seed(seed, batch, "question"))):
        probe.question = question
        probe.error = question_error(question, probe.picture)
    audit.scorer.score(probes)
    for probe in probes:  # verification only: the score above never sees the oracle
        if probe.target_answer is not None and probe.picture is not None and probe.picture.scene is not None:
            probe.check = check(probe.question or "", probe.picture.scene)


def _write(audit: Audit, probes: Sequence[Probe], task: Task, seed: int) -> list[str]:
    if not probes:
        return []
    images = [p.picture.image for p in probes if p.picture is not None]
    return audit.scorer.timed(lambda: audit.auditor.write(images, task, seed))


def _run(audit: Audit, progress: bool) -> dict[str, Any]:
    config, store = audit.config, audit.store
    parents = store.source_addresses()
    done = store.done_batches()
    batches = range(0, (config.probes + config.batch_size - 1) // config.batch_size)
    scorer = audit.scorer
    answerers = [(scorer.target.name, "target"), *((r.name, "reference") for r in scorer.references)]
    flagged = sum(p["score"] for p in store.probes())
    started = time.perf_counter()
    bar = tqdm(total=config.probes, desc="probes", unit="probe", disable=not progress,
               initial=min(config.probes, len(done) * config.batch_size))  # fmt: skip
    bar.set_postfix(flagged=flagged, refresh=False)
    for batch in batches:
        if batch in done:
            continue
        indices = range(batch * config.batch_size, min(config.probes, (batch + 1) * config.batch_size))
        probes = [plan_probe(audit, i) for i in indices]
        for probe in probes:
            probe.parent_image = parents[probe.source]
        run_batch(audit, batch, probes)
        store.commit_batch(batch, probes, audit.auditor.name, audit.auditor.prompts, answerers)
        flagged += sum(p.score for p in probes)
        bar.update(len(probes))
        bar.set_postfix(flagged=flagged, refresh=False)
    bar.close()
    meta = store.meta()
    store.set_meta(seconds=meta["seconds"] + time.perf_counter() - started,
                   model_seconds=meta.get("model_seconds", 0.0) + audit.scorer.model_seconds)  # fmt: skip
    return conclude(store)


def conclude(store: RunStore) -> dict[str, Any]:
    """Group the run's failures into categories, then write summary.json and report.html;
    returns the summary. Reads nothing but the store, so it can run again at any time."""
    from auditdm.findings import find_categories
    from auditdm.report import write_report

    store.replace_categories(find_categories(list(store.probes())))
    summary = summarize(store)
    (store.folder / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    write_report(store, summary)
    return summary
