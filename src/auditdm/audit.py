"""The audit: the auditor writes probes, the target and references answer, the judge scores.

For every probe the target's answer is compared with the references' consensus (score
s = 1 when they differ, SPEC section 2); on images of an embedded domain the oracle then
verifies what was flagged. Probes are made and committed in batches of ``commit_every``:
each batch is drawn from seeds of its own, so a resumed run redoes an interrupted batch
exactly as an uninterrupted run would have done it. A resume also asks again the probes that
failed only because a remote model or judge lost a reply, and nothing else. The models answer
a batch's probes ``batch_size`` at a time (one forward pass each, as one call would split
them), and the progress bar moves with them; before, it counts the batch's images as they
are drawn.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

from tqdm.auto import tqdm

from auditdm.auditor import Auditor, load_auditor
from auditdm.backends import ModelSpec, check_synthesizer, load_domain, load_synthesizer
from auditdm.errors import UserError, check_positive
from auditdm.files import cache_dir, write_text
from auditdm.judge import Remembering, normalize_answer
from auditdm.panel import Panel, load_panel, lost_reply
from auditdm.probes import inapplicable_pairings, make_probes, plan_probe, probe_kinds
from auditdm.models import CARD, CONCURRENCY, VLM, load_model, model_options
from auditdm.records import (PAIRINGS, SYNTHESES, Answers, DatasetAccuracy, Labelled, OracleCheck, Pairing, Picture,
                             Probe, ProbeRecord, RunSummary, SourceImage, Synthesis, Task)  # fmt: skip
from auditdm.store import DATABASE, RunStore, lock_run
from auditdm.summary import summarize
from auditdm.synth import SynthesisOptions, Synthesizer
from auditdm.verify import check, weak_and_blind

if TYPE_CHECKING:
    from PIL import Image

LOG = logging.getLogger(__name__)
SUMMARY = "summary.json"
EXECUTORS = ("local", "ray")
CONFIG = "audit.json"  # written before the store, so that a start stopped early can be resumed
T = TypeVar("T")


@dataclass(frozen=True)
class AuditConfig:
    """Everything that decides an audit's probes; saved in the run, so a resume repeats it.
    The command line's defaults are these."""

    target: str = "world:target"
    references: tuple[str, ...] = ()  # empty: the target kind's default references (the world zoo's)
    auditor: str = "world:auditor"  # GRPO-trained; world:baseline is the untrained baseline
    prompts: str | None = None  # prompt set; None: the auditor's own
    pairings: tuple[Pairing, ...] = PAIRINGS
    syntheses: tuple[Synthesis, ...] = SYNTHESES
    generator: str = "world"  # G: world, or diffusers:ID_OR_PATH (a text-to-image pipeline)
    editor: str = "world"  # E: world (edits world images only), or diffusers:ID_OR_PATH (an editing pipeline)
    images: str | None = None  # a folder of images; None: images of `domain` (or of `dataset`)
    dataset: str | None = None  # images with their questions (and answers): a datasets folder, Parquet, JSON(L)
    image_column: str | None = None  # the dataset's columns; None: found among the usual names
    question_column: str | None = None
    answer_column: str | None = None
    domain: str = "world"  # the embedded domain whose images are audited when no folder is given
    image_count: int = 40  # domain images, when no folder is given
    limit: int | None = None  # at most this many images of the folder (the first in name order); None: all
    probes: int = 200
    quorum: int | None = None  # references that must agree; None: all
    min_confidence: float | None = None  # a reference less sure of its answer abstains; None: none do
    judge: str = "exact"
    temperature: float = 1.0  # the auditor's sampling temperature
    explore: float = 0.0  # the share of the auditor's texts started with a form from its card
    seed: int = 0
    commit_every: int = 50  # probes made and stored together: a killed run loses at most these
    weak_skill_questions: int = 100  # per skill, to find the target's weak skills (on domain images); 0: skip
    device: str = "cpu"  # where every model runs ("cuda:0", ...)
    dtype: str | None = None  # "bfloat16", ...; None keeps each model's saved dtype
    batch_size: int = 32  # prompts per forward pass of a model
    max_new_tokens: int | None = None  # the length of the target's and references' answers; None: each backend's
    revision: str | None = None  # the hub revision every hf: hub id loads at; None: its default branch
    trust_remote_code: bool = False  # let hf: models run the code their hub repository holds
    concurrency: int = CONCURRENCY  # requests in flight at once per remote (openai:) model
    synthesis_device: tuple[str, ...] = ()  # G's and E's: one for both, or G's then E's; empty: `device`
    synthesis_dtype: str | None = None  # None: `dtype`
    synthesis_steps: int | None = None  # denoising steps; None: each pipeline's default
    guidance: float | None = None  # guidance scale; None: each pipeline's default
    cpu_offload: bool = False  # diffusers' model CPU offload, for a GPU too small for a whole pipeline
    executor: str = "local"  # where the models run: in this process, or in Ray actors ("ray")
    ray_address: str | None = None  # None: a local Ray cluster for the run; "auto" or HOST:PORT: an existing one
    replicas: int = 1  # Ray actors per model

    def __post_init__(self) -> None:
        check_positive(probes=self.probes, commit_every=self.commit_every, image_count=self.image_count,
                       limit=self.limit, batch_size=self.batch_size, max_new_tokens=self.max_new_tokens,
                       concurrency=self.concurrency, replicas=self.replicas)  # fmt: skip
        if self.temperature < 0 or self.weak_skill_questions < 0:
            raise UserError(f"--temperature {self.temperature} and --weak-skill-questions {self.weak_skill_questions}: "
                            "neither may be negative")  # fmt: skip
        if self.dataset is not None and self.images is not None:
            raise UserError(f"--dataset {self.dataset} and --images {self.images} both name the images to audit: "
                            "give one")  # fmt: skip
        for flag, column in (("--image-column", self.image_column), ("--question-column", self.question_column),
                             ("--answer-column", self.answer_column)):  # fmt: skip
            if column is not None and self.dataset is None:
                raise UserError(f"{flag} {column}: names a column of --dataset, and none is given")
        for name, given, known in (("pairing", self.pairings, PAIRINGS), ("synthesis", self.syntheses, SYNTHESES)):
            unknown = [g for g in given if g not in known]
            if unknown or not given:
                raise UserError(f"unknown {name} {', '.join(unknown) or '(none given)'} (choose from {', '.join(known)})")
        if self.executor not in EXECUTORS:
            raise UserError(f"--executor {self.executor}: choose from {', '.join(EXECUTORS)}")
        self.synthesis_options()

    def synthesis_options(self) -> tuple[SynthesisOptions, SynthesisOptions]:
        """How the generator and the editor run."""
        return SynthesisOptions.per_role(self.synthesis_device, self.device, self.synthesis_dtype or self.dtype,
                                         self.synthesis_steps, self.guidance, self.cpu_offload)  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditConfig:
        tuples = {"references", "pairings", "syntheses", "synthesis_device"}
        values: dict[str, Any] = {k: tuple(v) if k in tuples else v for k, v in data.items()}
        if "synthesizer" in values:  # a run from before G and E were chosen apart
            values["generator"] = values["editor"] = values.pop("synthesizer")
        if "commit_every" not in values and "batch_size" in values:  # from before --batch-size meant a forward pass
            values["commit_every"] = values.pop("batch_size")
        return cls(**values)


class Stopwatch:
    """Adds up the time spent in model calls (the auditor's and the panel's)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def timed(self, call: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return call()
        finally:
            self.seconds += time.perf_counter() - started


@dataclass(frozen=True)
class _TimedAuditor:
    """The auditor, its calls timed by the stopwatch."""

    auditor: Auditor
    clock: Stopwatch

    def write(self, images: Sequence[Image.Image], task: Task, seed: int) -> list[str]:
        return self.clock.timed(lambda: self.auditor.write(images, task, seed))


@dataclass(frozen=True)
class _ShownSynthesizer:
    """The synthesizer, each image it draws shown on the bar: with a diffusion model, drawing
    is the slow step of a batch, before any of its probes is answered."""

    synthesizer: Synthesizer
    bar: tqdm  # type: ignore[type-arg]
    status: dict[str, int]  # the bar's postfix

    @property
    def name(self) -> str:
        return self.synthesizer.name

    def generate(self, caption: str, seed: int) -> Picture:
        return self._drawn(self.synthesizer.generate(caption, seed))

    def edit(self, picture: Picture, command: str, seed: int) -> Picture:
        return self._drawn(self.synthesizer.edit(picture, command, seed))

    def _drawn(self, picture: Picture) -> Picture:
        self.status["drawn"] += 1
        self.bar.set_postfix(self.status)
        return picture


@dataclass(frozen=True)
class Audit:
    """What an audit runs with: the loaded models, the images, and where it stores."""

    config: AuditConfig
    store: RunStore
    auditor: Auditor
    panel: Panel
    synthesizer: Synthesizer
    sources: list[SourceImage]
    lock: IO[str]  # held while the audit runs: one process per run directory


def start_audit(config: AuditConfig, out: Path, progress: bool = True) -> RunSummary:
    """Run a new audit into ``out``; returns its summary (also saved as summary.json).

    What can fail on the input fails before anything is written; then the configuration
    is written first, so that a run stopped before its store exists resumes too.
    """
    RunStore.check_new(out)
    return _start(config, out, progress, resumed=False)


def resume_audit(run_dir: Path, progress: bool = True) -> RunSummary:
    """Continue a stopped audit where it stopped; returns the summary of the whole run."""
    if not (run_dir / DATABASE).exists() and (run_dir / CONFIG).is_file():  # stopped before its store existed
        return _start(AuditConfig.from_dict(json.loads((run_dir / CONFIG).read_text())), run_dir, progress,
                      resumed=True)  # fmt: skip
    store = RunStore.open(run_dir)
    lock = lock_run(run_dir)
    config, models = _load(AuditConfig.from_dict(store.meta()["config"]))
    return _run(Audit(config, store, *models, sources=store.sources(), lock=lock), progress, answer_lost=True)


def _start(config: AuditConfig, out: Path, progress: bool, resumed: bool) -> RunSummary:
    sources = _sources(config)
    for source in sources:  # a probe plan that cannot work fails now, not after the store exists
        probe_kinds(config.pairings, config.syntheses, source)
    dropped = inapplicable_pairings(config.pairings, sources)
    if dropped and config.pairings != PAIRINGS:  # named by the user: an error, never a silent drop
        raise UserError(f"--pairings {','.join(config.pairings)}: {'; '.join(dropped.values())} (give --dataset "
                        f"with a question column, or leave {', '.join(dropped)} out)")  # fmt: skip
    for pairing, why in dropped.items():
        LOG.warning("auditdm: dropped pairing %s: %s (--dataset gives images with their questions)", pairing, why)
    config, (auditor, panel, synthesizer) = _load(config)
    lock = lock_run(out)
    if not resumed:
        write_text(out / CONFIG, json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    weak, blind = _weak_skills(config, panel, sources, progress)
    accuracy = _dataset_accuracy(panel, sources, config.batch_size, progress)
    meta = {"config": dataclasses.asdict(config), "weak_skills": weak, "consensus_blind": blind, "seconds": 0.0,
            "auditor_curves": auditor.curves, "dropped_pairings": dropped,
            "dataset_accuracy": dataclasses.asdict(accuracy) if accuracy else None,
            "dataset_answers": [s.answer for s in sources] if accuracy else None}  # fmt: skip
    store = RunStore.create(out, meta, sources)
    return _run(Audit(config, store, auditor, panel, synthesizer, sources, lock), progress)


def _sources(config: AuditConfig) -> list[SourceImage]:
    """The images to audit: a dataset's (with their questions), a folder's, or a domain's."""
    from auditdm.sources import load_sources

    if config.dataset is None:
        return load_sources(config.images, config.domain, config.image_count, config.seed, limit=config.limit)
    from auditdm.qa_data import Columns, read_questions

    return read_questions(Path(config.dataset), Columns(config.image_column, config.question_column,
                                                        config.answer_column), limit=config.limit)  # fmt: skip


def _load(config: AuditConfig) -> tuple[AuditConfig, tuple[Auditor, Panel, Synthesizer]]:
    """Load every model the audit needs (first errors first: a bad name fails in seconds);
    the config comes back with its references named."""
    check_synthesizer(config.generator, config.editor)
    options = {**model_options(config), "concurrency": config.concurrency}
    load, synthesize = load_model, load_synthesizer
    if config.executor == "ray":  # the same models, behind the same protocols, in Ray actors
        from auditdm.ray_executor import for_audit

        executor = for_audit(config)
        load, synthesize = executor.load_model, executor.load_synthesizer
    panel = load_panel(config.target, config.references, config.judge, config.quorum, config.min_confidence,
                       load=load, max_new_tokens=config.max_new_tokens, **options)  # fmt: skip
    config = dataclasses.replace(config, references=tuple(r.name for r in panel.references))
    auditor = load_auditor(config.auditor, prompts=config.prompts, temperature=config.temperature, load=load,
                           explore=config.explore, **options)  # fmt: skip
    synthesizer = synthesize(config.generator, config.editor, config.synthesis_options())
    return config, (auditor, panel, synthesizer)


def _weak_skills(config: AuditConfig, panel: Panel, sources: Sequence[SourceImage],
                 progress: bool) -> tuple[list[str] | None, list[str] | None]:  # fmt: skip
    """The target's weak skills, and the skills where the references' majority is blind, on
    the held-out benchmark of the embedded domain the audited images come from; None off
    the domains. Any model can be tested: the benchmark only needs answers."""
    domains = {s.picture.scene.domain if s.picture.scene else None for s in sources}
    if len(domains) != 1 or None in domains or not config.weak_skill_questions:
        return None, None
    domain = load_domain(domains.pop() or "")
    examples = domain.benchmark(config.weak_skill_questions)
    key = _benchmark_key(config, domain.name, examples)
    cached = cache_dir() / "weak-skills" / f"{key}.json"
    if key and cached.is_file():
        found = json.loads(cached.read_text())
        return found["weak_skills"], found["consensus_blind"]
    models = [panel.target, *panel.references]
    with tqdm(total=len(examples) * len(models), desc=f"weak skills of {config.target}", unit="answer",
              disable=not progress) as bar:  # fmt: skip
        target, *references = (_Counted(m, bar, config.batch_size) for m in models)
        weak, blind = weak_and_blind(target, references, examples)
    if key:
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_text(cached, json.dumps({"weak_skills": weak, "consensus_blind": blind}) + "\n")
    return weak, blind


def _dataset_accuracy(panel: Panel, sources: Sequence[SourceImage], batch_size: int,
                      progress: bool) -> DatasetAccuracy | None:  # fmt: skip
    """How often the target, each reference and their consensus answer the original images'
    own questions as the dataset does (None when it gives no answers). Answered like probes,
    in batches; compared as the weak-skill benchmark compares, by ``normalize_answer``."""
    asked = [s for s in sources if s.question is not None and s.answer is not None]
    if not asked:
        return None
    if progress:
        print(f"answering the dataset's {len(asked)} questions about the original images")
    answers: list[Answers | None] = []
    for start in range(0, len(asked), batch_size):
        batch = enumerate(asked[start : start + batch_size], start)
        answers += panel.answer([Probe(i, i, "question", None, 0, picture=s.picture, question=s.question)
                                 for i, s in batch])[1]  # fmt: skip
    truths = [normalize_answer(s.answer or "") for s in asked]

    def accuracy(given: Sequence[str | None]) -> float:
        return sum(g is not None and normalize_answer(g) == t for g, t in zip(given, truths, strict=True)) / len(asked)

    return DatasetAccuracy(
        questions=len(asked),
        target=accuracy([a.target if a else None for a in answers]),
        references={r.name: accuracy([a.references[k] if a else None for a in answers])
                    for k, r in enumerate(panel.references)},  # fmt: skip
        consensus=accuracy([a.consensus if a else None for a in answers]),
    )


def _benchmark_key(config: AuditConfig, domain: str, examples: Sequence[Labelled]) -> str | None:
    """What the weak skills depend on, hashed: the benchmark (questions, answers, pixels), and
    every model's files and placement. The same models on the same benchmark give the same
    answers, so a second audit reuses them; None (no caching) for a model with no local folder."""
    digest = hashlib.sha256(json.dumps([domain, config.device, config.dtype, config.batch_size,
                                        config.max_new_tokens]).encode())  # fmt: skip
    for example in examples:
        digest.update(f"{example.question}\t{example.answer}\t{example.skill}\n".encode())
        digest.update(example.image.tobytes())
    for spec in (config.target, *config.references):
        folder = ModelSpec.parse(spec).resolve()
        if not isinstance(folder, Path):
            return None
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CARD):
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _run(audit: Audit, progress: bool, answer_lost: bool = False) -> RunSummary:
    """Make, answer and store every batch not yet stored; with ``answer_lost`` (a resume), then
    ask again the probes whose replies were lost."""
    config, store, panel = audit.config, audit.store, audit.panel
    parents = store.source_addresses()
    done = store.done_batches()
    clock = Stopwatch()
    auditor = _TimedAuditor(audit.auditor, clock)
    if isinstance(panel.judge, Remembering):  # an LLM judge: what it decided before is not asked again
        panel.judge.recall(store.decisions(panel.judge.name))
    status = {"flagged": sum(p.score for p in store.probes()), "drawn": 0}  # drawn: images of the current batch
    meta = store.meta()
    seconds, model_seconds = meta["seconds"], meta.get("model_seconds", 0.0)  # what earlier processes spent
    every = config.commit_every
    bar = tqdm(total=config.probes, desc="probes", unit="probe", disable=not progress,
               initial=min(config.probes, len(done) * every))  # fmt: skip
    bar.set_postfix(status, refresh=False)
    synthesizer = _ShownSynthesizer(audit.synthesizer, bar, status)
    for batch in range(0, (config.probes + every - 1) // every):
        if batch in done:
            continue
        started, clock.seconds, status["drawn"] = time.perf_counter(), 0.0, 0
        indices = range(batch * every, min(config.probes, (batch + 1) * every))
        planned = [plan_probe(audit.sources, config.pairings, config.syntheses, config.seed, i, parents)
                   for i in indices]  # fmt: skip
        probes: list[Probe] = []
        answers: list[Answers | None] = []
        checks: list[OracleCheck | None] = []
        for chunk in _forward_passes(make_probes(planned, auditor, synthesizer, config.seed, batch),
                                     config.batch_size):  # fmt: skip
            some, theirs, checked = _answer(panel, chunk, clock)
            probes += some
            answers += theirs
            checks += checked
            status["flagged"] += sum(a.score for a in theirs if a is not None)
            bar.set_postfix(status, refresh=False)
            bar.update(len(chunk))
        # The time goes into the store with its batch: a killed run keeps the time it spent.
        seconds, model_seconds = seconds + time.perf_counter() - started, model_seconds + clock.seconds
        store.commit_batch(batch, probes, answers, checks, audit.auditor.name, audit.auditor.prompts,
                           _answerers(panel), meta={"seconds": seconds, "model_seconds": model_seconds},
                           **_decisions(panel))  # fmt: skip
    bar.close()
    if answer_lost:
        _answer_lost(audit, progress)
    return conclude(store)


def _answer(panel: Panel, probes: Sequence[Probe],
            clock: Stopwatch) -> tuple[list[Probe], list[Answers | None], list[OracleCheck | None]]:  # fmt: skip
    """The panel's answers (a probe a model could not answer fails) and the oracle's checks
    of the answered probes; the scores never see the oracle, it only verifies them."""
    made, answers = clock.timed(lambda: panel.answer(probes))
    checks = [check(p.question or "", p.picture) if a is not None and p.picture is not None else None
              for p, a in zip(made, answers)]  # fmt: skip
    return made, answers, checks


def _answer_lost(audit: Audit, progress: bool) -> None:
    """Ask the panel again about the probes whose replies were lost, ``commit_every`` at a
    time, each batch stored as it is answered (one that fails again keeps its new reason)."""
    store, panel, size = audit.store, audit.panel, audit.config.commit_every
    lost = [_stored_probe(store, p) for p in store.probes() if lost_reply(p.error, panel)]
    clock = Stopwatch()
    for start in tqdm(range(0, len(lost), size), desc="lost replies", unit="batch", disable=not progress or not lost):
        started, clock.seconds = time.perf_counter(), 0.0
        probes, answers, checks = _answer(panel, lost[start:start + size], clock)
        meta = store.meta()
        store.answer_again(probes, answers, checks, _answerers(panel), **_decisions(panel), meta={
            "seconds": meta["seconds"] + time.perf_counter() - started,
            "model_seconds": meta.get("model_seconds", 0.0) + clock.seconds})  # fmt: skip


def _stored_probe(store: RunStore, record: ProbeRecord) -> Probe:
    """A stored probe as it was made, without its error, to be answered again."""
    return Probe(record.idx, record.source, cast(Pairing, record.pairing), cast(Synthesis | None, record.synthesis),
                 record.seed, record.parent_image, store.load_picture(record.image or ""), record.question,
                 record.instruction)  # fmt: skip


def _answerers(panel: Panel) -> list[tuple[str, str]]:
    return [(panel.target.name, "target"), *((r.name, "reference") for r in panel.references)]


def _decisions(panel: Panel) -> dict[str, Any]:
    """What the judge decided since it was last asked, for the store (an LLM judge's only)."""
    if not isinstance(panel.judge, Remembering):
        return {}
    return {"judge": panel.judge.name, "decisions": panel.judge.unsaved()}


def _forward_passes(probes: Sequence[Probe], size: int) -> Iterator[Sequence[Probe]]:
    """The probes in runs of ``size`` valid ones (the invalid ones between them ride along):
    each run is one forward pass of every model, as the whole batch would be split."""
    start, valid = 0, 0
    for end, probe in enumerate(probes, 1):
        valid += probe.valid
        if valid == size or end == len(probes):
            yield probes[start:end]
            start, valid = end, 0


class _Counted:
    """A model asked ``size`` prompts at a time (its forward passes), each moving ``bar``."""

    def __init__(self, model: VLM, bar: tqdm, size: int) -> None:  # type: ignore[type-arg]
        self.model, self.bar, self.size, self.name = model, bar, size, model.name

    def generate(self, images: Sequence[Image.Image], prompts: Sequence[str], *, max_new_tokens: int | None = None,
                 temperature: float = 0.0, seed: int = 0, starts: Sequence[str] = ()) -> list[str]:  # fmt: skip
        return self._asked(lambda part: self.model.generate(images[part], prompts[part], max_new_tokens=max_new_tokens,
                                                            temperature=temperature, seed=seed,
                                                            starts=starts[part]), len(images))  # fmt: skip

    def confidences(self, images: Sequence[Image.Image], prompts: Sequence[str]) -> list[tuple[str, float]]:
        return self._asked(lambda part: self.model.confidences(images[part], prompts[part]), len(images))

    def _asked(self, ask: Callable[[slice], list[T]], count: int) -> list[T]:
        replies: list[T] = []
        for start in range(0, count, self.size):
            part = slice(start, start + self.size)
            replies += ask(part)
            self.bar.update(min(self.size, count - start))
        return replies


def conclude(store: RunStore) -> RunSummary:
    """Group the run's failures into categories, then write summary.json and report.html;
    returns the summary. Reads nothing but the store, so it can run again at any time."""
    from auditdm.findings import find_categories
    from auditdm.report import write_report

    store.replace_categories(find_categories(list(store.probes())))
    summary = summarize(store)
    write_text(store.folder / SUMMARY, json.dumps(summary.to_dict(), indent=2) + "\n")
    write_report(store, summary)
    return summary
