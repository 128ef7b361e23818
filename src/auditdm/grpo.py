"""Train the auditor with GRPO (SPEC section 2): the reward of a probe is its audit score.

Leaves out on purpose: generation with vLLM and multi-GPU training (TRL's own flags do both)
and the paper's batch of 256 (ours is set for two CPU cores). What it keeps: for each image
a group of G probes sampled across the enabled paths; the reward of each is the audit's
score s (made by the audit's probe maker, answered and scored by the audit's ``Panel``),
a flag's discounted by how often it was found before and every probe charged for writing
what was written often (``AuditReward``); a share of each group starts with a form written
before (``exploration.py``); only the auditor is updated, through TRL's ``GRPOTrainer``.

Each path gives a probe directly: a question (Q*, I); a caption that regenerates the image,
asked the image's original question (Q, I*); an edit command, likewise (Q, I*).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from auditdm.auditor import auditor_spec
from auditdm.backends import ModelSpec, check_synthesizer, load_synthesizer
from auditdm.errors import UserError, check_positive
from auditdm.exploration import FormExplorer
from auditdm.files import write_text
from auditdm.models import model_options
from auditdm.models import write_card as write_model_card
from auditdm.panel import Panel, check_min_confidence, load_panel
from auditdm.probes import with_instruction, with_question
from auditdm.prompts import PROMPTS
from auditdm.records import TASKS, Answers, Probe, SourceImage, Synthesis, Task
from auditdm.sources import load_sources
from auditdm.synth import SynthesisOptions, Synthesizer

SETTINGS = "settings.json"
CURVES = "curves.jsonl"
REWARD_STATE = "reward-state.json"  # in each checkpoint: the reward's memories, for a resume
NOVELTY_OF = ("probe", "answer", "form")
FORM_WORDS = 2  # a form is the first words of what the auditor wrote: VQA's "question type"
NOVELTY_AS = ("bonus", "discount")
CROWDING_OF = ("form", "answer", "probe")  # --crowding-of joins them with "+", each with an optional ":share"
NO_CONSENSUS_CHARGES = ("whole", "crowded")
SCALE_REWARDS = ("group", "batch", "none")  # TRL's
# A training whose probes' validity, averaged over this many steps, falls below half its best has
# diverged: once every probe of a group is garbage, they all earn the same and nothing pulls it back.
DIVERGED_WINDOW = 50


@dataclass(frozen=True)
class GRPOSettings:
    """Everything a training run depends on; saved beside it so that a resume repeats it."""

    auditor: str = "world:baseline"
    target: str = "world:target"
    references: tuple[str, ...] = ()  # empty: the target kind's default references (the world zoo's)
    quorum: int | None = None
    # A reference less sure of its answer than this abstains, so the probe earns nothing:
    # without it, an auditor trained against a target that counts better than the references
    # learns to find where they miscount together (BENCHMARKS.md, "auditor transfer": 87 % of
    # its flags shared errors). 0.8, with the crowding charge, also keeps out the false premises
    # ("what shape is the circle ?") that the charge would otherwise pay for writing.
    min_confidence: float | None = 0.8
    judge: str = "exact"
    tasks: tuple[Task, ...] = TASKS  # the enabled paths
    prompts: str = "auditdm"
    images: int = 512  # domain training images (a stream apart from the audit's), when no folder is given
    image_folder: str | None = None  # a folder of training images instead
    limit: int | None = None  # at most this many images of the folder (the first in name order); None: all
    domain: str = "world"  # the embedded domain whose images train the auditor
    generator: str = "world"  # makes images from captions: world, or diffusers:ID_OR_PATH (text-to-image)
    editor: str = "world"  # edits images: world, or diffusers:ID_OR_PATH (an editing pipeline)
    group_size: int = 8  # G: probes sampled per image and path
    train_batch_size: int = 32  # probes per step (completions, as TRL counts them)
    steps: int = 1200
    lr: float = 1e-4  # the paper's 3e-6 is for a 4B model; a 1 M model moves at this rate
    min_lr_ratio: float = 1 / 3  # the paper: 3e-6 decaying to 1e-6
    warmup_fraction: float = 0.1
    kl: float = 0.0  # GRPO's beta
    # How much novelty counts (0 turns it off). The default, a full discount by form with the
    # step's reward scaling, kept >= 85 % of the flags genuine on four targets the recipe was
    # not chosen on, where the gate alone fell to 64 % on two (BENCHMARKS.md, "auditor transfer").
    novelty: float = 1.0
    # What novelty is measured on: "probe", the text the auditor wrote; or "answer", the
    # references' consensus answer (a flag whose answer is unlike recent ones is a new kind
    # of failure, however the probe is worded); or "form", its first words ("how many", "is
    # there", "make it"), where n is 1 minus the share of recent flags of the same form: an
    # auditor cannot escape it by rewording, as it escapes the text's similarity.
    novelty_of: str = "form"
    # How novelty enters the reward of a flag: "bonus", 1 + novelty * n; or "discount",
    # 1 - novelty * (1 - n), where n is 1 for a failure unlike any recent one and 0 for one
    # found before. The discount is fitness sharing: a failure the auditor keeps finding is
    # worth less and less, so collapsing onto it stops paying.
    novelty_as: str = "discount"
    # n is raised to this power first. With the discount a flag of a form that has a share s of
    # the recent flags earns (1 - s) ** power: a form flagged eight times as often as another still
    # takes 87.5 % of the flags at power 1 (where both pay alike), 75 % at 2 and 50 % at 3. At 3 a
    # found failure pays too little beside the crowding charge (BENCHMARKS.md, section 3).
    novelty_power: float = 2.0
    memory: int = 256  # recent flagged probes the novelty is measured against
    # What a probe's advantage (its reward minus its group's mean) is divided by: the group's
    # standard deviation (TRL's default), the whole step's, or nothing. Divided by the group's,
    # a group that wrote one form only sees its flags paid 1 again however small the discount
    # made them (BENCHMARKS.md, section 3).
    scale_rewards: str = "batch"
    # What writing a crowded form costs: every probe is charged crowding times the share of the
    # recent probes of its path that the references answered together and that have its form
    # (one they did not answer together, or an invalid one, pays the whole weight).
    # Unlike the novelty, which pays only flags, this moves a group with one odd form in it
    # whether or not that probe flags, so the auditor keeps writing several forms. 0.5 with the
    # gate at 0.8 kept >= 90 % of the flags genuine on four targets the recipe was not chosen on,
    # with recall as high or higher than without it on each (BENCHMARKS.md, section 3).
    crowding: float = 0.5
    # What makes two probes alike for the charge: their form; the references' consensus answer
    # (a question always answered "no" is crowded however it is worded); or their whole text (one
    # question asked of every image is crowded, its form's other questions are not). Several
    # measures join with "+", each charged in full or at a share of it. The default charges one
    # question asked again in full and a crowded form at half: with the exploration and power 2,
    # recall >= 60 % on all four targets the recipe was not chosen on (one falls to 33 % with
    # another seed), where by form alone one question took 86 % of the genuine failures and
    # recall fell to 33-40 % on two, and by text alone another target's fell to 33 %
    # (BENCHMARKS.md, section 3).
    crowding_of: str = "probe+form:0.5"
    # What a valid probe the references did not answer together (they split, or one was unsure)
    # pays: the whole charge, as an invalid one does; or ("crowded") what the most crowded probe
    # of its path pays, so that a question always answered together ("is it day or night ?") is
    # no cheaper than one whose premise may be missing.
    no_consensus_charge: str = "whole"
    # The share of each group's probes that start with a form the auditor wrote before (with a
    # consensus), drawn at random; the auditor writes the rest. A group that has settled on one
    # form otherwise gives no gradient towards another, whatever the reward (exploration.py).
    explore: float = 0.25
    save_every: int = 300  # the paper keeps every 250 of 1,000
    temperature: float = 1.0
    lora_rank: int = 0  # > 0: train LoRA adapters of this rank (for large hf: auditors)
    seed: int = 0
    device: str = "cpu"  # where the auditor trains and every model runs: cpu, cuda, cuda:0, ...
    dtype: str | None = None  # "bfloat16", ...; None keeps each model's saved dtype
    batch_size: int = 32  # prompts per forward pass of the target and the references
    max_new_tokens: int | None = None  # the length of their answers; None: each backend's own
    revision: str | None = None  # the hub revision every hf: hub id loads at; None: its default branch
    trust_remote_code: bool = False  # let hf: models run the code their hub repository holds
    synthesis_device: tuple[str, ...] = ()  # one for both, or the generator's then the editor's; empty: `device`
    synthesis_dtype: str | None = None  # None: `dtype`
    synthesis_steps: int | None = None  # denoising steps; None: each pipeline's default
    guidance: float | None = None  # guidance scale; None: each pipeline's default
    cpu_offload: bool = False  # diffusers' model CPU offload, for a GPU too small for a whole pipeline

    def __post_init__(self) -> None:
        check_positive(limit=self.limit, batch_size=self.batch_size, max_new_tokens=self.max_new_tokens)
        if self.train_batch_size % self.group_size:
            raise UserError(f"--train-batch-size {self.train_batch_size} must be a multiple of --group-size "
                            f"{self.group_size}")  # fmt: skip
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks:
            raise UserError(f"unknown path {', '.join(unknown) or '(none given)'} (choose from {', '.join(TASKS)})")
        if self.novelty_of not in NOVELTY_OF:
            raise UserError(f"unknown novelty measure {self.novelty_of!r} (choose from {', '.join(NOVELTY_OF)})")
        if self.novelty_as not in NOVELTY_AS:
            raise UserError(f"unknown novelty form {self.novelty_as!r} (choose from {', '.join(NOVELTY_AS)})")
        if self.scale_rewards not in SCALE_REWARDS:
            raise UserError(f"unknown reward scaling {self.scale_rewards!r} (choose from {', '.join(SCALE_REWARDS)})")
        if self.crowding < 0:
            raise UserError(f"--crowding {self.crowding}: must be at least 0")
        crowding_measures(self.crowding_of)
        if self.no_consensus_charge not in NO_CONSENSUS_CHARGES:
            raise UserError(f"unknown --no-consensus-charge {self.no_consensus_charge!r} (choose from "
                            f"{', '.join(NO_CONSENSUS_CHARGES)})")  # fmt: skip
        if not 0 <= self.explore <= 1:
            raise UserError(f"--explore {self.explore}: a share of each group, between 0 and 1")
        if self.novelty_power <= 0:
            raise UserError(f"--novelty-power {self.novelty_power}: must be above 0")
        if self.novelty_as == "discount" and not 0 <= self.novelty <= 1:
            raise UserError(f"--novelty {self.novelty}: a discount must be between 0 and 1")
        if self.prompts not in PROMPTS:
            raise UserError(f"unknown prompt set {self.prompts!r} (have: {', '.join(PROMPTS)})")
        check_min_confidence(self.min_confidence)  # before the training folder is made
        self.synthesis_options()

    def synthesis_options(self) -> tuple[SynthesisOptions, SynthesisOptions]:
        """How the generator and the editor run."""
        return SynthesisOptions.per_role(self.synthesis_device, self.device, self.synthesis_dtype or self.dtype,
                                         self.synthesis_steps, self.guidance, self.cpu_offload)  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GRPOSettings:
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        if "synthesizer" in values:  # a training from before G and E were chosen apart
            values["generator"] = values["editor"] = values.pop("synthesizer")
        if "train_batch_size" not in values and "batch_size" in values:  # from before --batch-size meant a forward pass
            values["train_batch_size"] = values.pop("batch_size")
        values.setdefault("scale_rewards", "group")  # a training from before the scaling was a setting
        values.setdefault("crowding", 0.0)  # from before the crowding charge
        values.setdefault("crowding_of", "form")  # from before it could be charged by answer
        values.setdefault("explore", 0.0)  # from before the exploration
        values.setdefault("novelty_power", 1.0)  # from before the power
        return cls(**values)

    @classmethod
    def read(cls, training: Path) -> GRPOSettings:
        """The settings of an auditor training: its folder, or the settings file in it."""
        path = training / SETTINGS if training.is_dir() else training
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as error:  # TypeError: fields of no training's
            raise UserError(f"{training}: not an auditor training or its {SETTINGS} ({error})") from None


def crowding_measures(spec: str) -> dict[str, float]:
    """What --crowding-of names: each measure with the share of the charge it is charged at."""
    measures: dict[str, float] = {}
    for part in spec.split("+"):
        measure, colon, share = part.strip().partition(":")
        if measure not in CROWDING_OF or measure in measures:
            raise UserError(f"--crowding-of {spec}: {measure!r} is not a measure, or is named twice (choose from "
                            f"{', '.join(CROWDING_OF)}, joined by '+', each with an optional ':share': "
                            "probe+form:0.5)")  # fmt: skip
        try:
            measures[measure] = float(share) if colon else 1.0
        except ValueError:
            measures[measure] = math.nan
        if not 0 < measures[measure] < math.inf:
            raise UserError(f"--crowding-of {spec}: the share of {measure} must be a number above 0")
    return measures


def completion_text(completion: Any) -> str:
    """The text of a TRL completion (a chat message list, or plain text)."""
    if isinstance(completion, list):
        return " ".join(str(m.get("content") or "") for m in completion if m.get("role") == "assistant").strip()
    return str(completion).strip()


class AuditReward:
    """The reward function: each completion becomes a probe (through the audit's probe maker)
    and earns its audit score s (through the audit's panel).

    With ``novelty`` > 0 a flagged probe's novelty n is ``1 - similarity``, its highest cosine
    similarity (MiniLM) to the last ``memory`` flagged probes, compared by their text or
    (``novelty_of="answer"``) by their consensus answer; with ``novelty_of="form"`` it is 1
    minus the share of those flags whose text starts with the same words. It earns
    ``1 + novelty * n`` (a bonus) or ``1 - novelty * (1 - n)`` (``novelty_as="discount"``):
    either way the same failure found again earns less. Unflagged probes earn nothing.

    With ``crowding`` > 0 every probe is then charged ``crowding`` times the share of the last
    ``memory`` probes of its path with a consensus that start with its words (its form), or
    (``crowding_of``) whose consensus answer or whole text is its own, measured before the step; a
    probe without a consensus (invalid, or the references split or unsure) pays the whole
    ``crowding``: garbage never beats the most crowded form; with ``no_consensus_charge="crowded"``
    a valid one pays what the path's most crowded probe pays. With several measures
    ("probe+form:0.5") each is charged so, times its share.
    """

    __name__ = "audit_score"  # TRL logs rewards under their function's name

    def __init__(self, panel: Panel, synthesizer: Synthesizer, sources: Sequence[SourceImage], novelty: float,
                 memory: int, curves: Path | None = None, novelty_of: str = "probe", novelty_as: str = "bonus",
                 crowding: float = 0.0, explorer: FormExplorer | None = None,
                 crowding_of: str = "form", novelty_power: float = 1.0,
                 no_consensus_charge: str = "whole") -> None:  # fmt: skip
        self.panel, self.synthesizer, self.sources = panel, synthesizer, sources
        self.explorer = explorer
        self.novelty, self.novelty_of, self.novelty_as = novelty, novelty_of, novelty_as
        self.novelty_power = novelty_power
        self.recent: deque[Any] = deque(maxlen=memory)  # embeddings, or forms
        self.crowding, self.no_consensus_charge = crowding, no_consensus_charge
        # Per measure and path, what the recent probes with a consensus were like.
        self.shares = crowding_measures(crowding_of)
        self.written: dict[str, dict[str, deque[str]]] = {
            measure: {task: deque(maxlen=memory) for task in TASKS} for measure in self.shares}
        self.curves = curves
        self.validity: list[float] = []  # each step's share of valid probes, for the divergence guard

    def state(self) -> dict[str, Any]:
        """The memories the reward depends on, as JSON: saved with each checkpoint, so that a resumed
        training charges and discounts as the uninterrupted one would."""
        recent = [v.tolist() if isinstance(v, np.ndarray) else v for v in self.recent]
        written = {measure: {task: list(memory) for task, memory in paths.items()}
                   for measure, paths in self.written.items()}  # fmt: skip
        return {"recent": recent, "written": written, "validity": self.validity,
                "explorer": self.explorer.state() if self.explorer else None}  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint's ``state()``."""
        as_vectors = self.novelty_of != "form"
        self.recent.extend(np.asarray(v, dtype=np.float32) if as_vectors else v for v in state["recent"])
        for measure, paths in self.written.items():
            for task, memory in paths.items():
                memory.extend(state["written"].get(measure, {}).get(task, []))
        self.validity = list(state["validity"])
        if self.explorer is not None and state["explorer"] is not None:
            self.explorer.restore(state["explorer"])

    def probes(self, texts: Sequence[str], tasks: Sequence[str], sources: Sequence[int]) -> list[Probe]:
        """The probes the completions stand for, made as the audit makes them: a question is
        (Q*, I); a caption or an edit command is (Q, I*), asked the image's original question."""
        made = []
        for i, (text, task, source) in enumerate(zip(texts, tasks, sources)):
            image = self.sources[source]
            if task == "question":
                made.append(with_question(Probe(i, source, "question", None, 0, picture=image.picture), text))
            else:
                synthesis: Synthesis = "caption" if task == "caption" else "edit"
                planned = Probe(i, source, "image", synthesis, 0, picture=image.picture, question=image.question)
                made.append(with_instruction(planned, text, self.synthesizer))
        return made

    def __call__(self, prompts: list[Any], completions: list[Any], task: list[str], source: list[int],
                 trainer_state: Any = None, **_: Any) -> list[float]:  # fmt: skip
        texts = [completion_text(c) for c in completions]
        probes = self.probes(texts, task, source)
        probes, answers = self.panel.answer(probes)
        rewards = [float(a.score) if a else 0.0 for a in answers]
        flagged = [(i, a) for i, a in enumerate(answers) if a and a.score]
        compared = [(a.consensus or "") if self.novelty_of == "answer" else texts[i] for i, a in flagged]
        bonus = self._novelty(compared) if self.novelty and flagged else []
        for (i, _flag), extra in zip(flagged, bonus):
            extra **= self.novelty_power
            rewards[i] += self.novelty * (extra if self.novelty_as == "bonus" else extra - 1)
        # Only a probe the references answer together counts as written, for the charge and the explorer.
        consensus = [a.consensus if a is not None else None for a in answers]
        agreed = [(kind, probe_form(text)) if c is not None else None for text, kind, c in zip(texts, task, consensus)]
        for measure, memory in self.written.items() if self.crowding else ():
            keys = [None if a is None else (kind, None if c is None else crowding_key(measure, text, c))
                    for text, kind, a, c in zip(texts, task, answers, consensus)]  # fmt: skip
            rewards = [r - self.shares[measure] * cost for r, cost in zip(rewards, self._crowding(memory, keys))]
        if self.explorer is not None:
            for written in filter(None, agreed):
                self.explorer.record(*written)
        self._log(trainer_state, probes, answers, texts, rewards)
        return rewards

    def _novelty(self, texts: list[str]) -> list[float]:
        if self.novelty_of == "form":
            return self._form_novelty(texts)
        from auditdm.embed import embed

        vectors = embed(texts)
        novelty = []
        for vector in vectors:  # each against the memory as it stands, then remembered
            similarity = max((float(vector @ old) for old in self.recent), default=0.0)
            novelty.append(max(0.0, 1.0 - similarity))
            self.recent.append(vector)
        return novelty

    def _form_novelty(self, texts: list[str]) -> list[float]:
        novelty = []
        for text in texts:
            form = probe_form(text)
            novelty.append(1.0 - sum(old == form for old in self.recent) / len(self.recent) if self.recent else 1.0)
            self.recent.append(form)
        return novelty

    def _crowding(self, memory: dict[str, deque[str]], keys: Sequence[tuple[str, str | None] | None]) -> list[float]:
        # ``keys``: (path, crowding_key) of each probe the references answered together, (path, None) of
        # a valid one they did not, None of an invalid one. A question whose premise the image lacks
        # splits them or leaves them unsure more often, so a rare form pays less for it: such a probe
        # pays the whole weight, as an invalid one does (or, "crowded", as the path's most crowded).
        # Against the memory before the step: a group's equal forms cost the same, whatever their order.
        before = {task: (Counter(recent), len(recent)) for task, recent in memory.items()}
        most = {task: max(counts.values(), default=0) for task, (counts, _) in before.items()}  # once per step
        costs = []
        for written in keys:
            if written is None or (written[1] is None and self.no_consensus_charge == "whole"):
                costs.append(self.crowding)
                continue
            task, key = written
            counts, size = before[task]
            crowded = counts[key] if key is not None else most[task]
            costs.append(self.crowding * (crowded / size if size else 0.0))
            if key is not None:
                memory[task].append(key)
        return costs

    def _log(self, state: Any, probes: list[Probe], answers: list[Answers | None], texts: list[str],
             rewards: list[float]) -> None:  # fmt: skip
        self.validity.append(sum(p.error is None for p in probes) / len(probes))
        if self.curves is None:
            return
        flagged = [t for t, a in zip(texts, answers) if a and a.score]
        row = {
            "step": int(getattr(state, "global_step", 0)) + 1,
            "reward": float(np.mean(rewards)),
            "flag_rate": len(flagged) / len(probes),
            "validity": self.validity[-1],
            "diversity": len(set(flagged)) / len(flagged) if flagged else 0.0,  # distinct among flagged
        }
        with self.curves.open("a") as file:
            file.write(json.dumps(row) + "\n")


def diverged(validity: Sequence[float], window: int = DIVERGED_WINDOW) -> bool:
    """Whether the mean validity of the last ``window`` steps is below half the best such mean."""
    if len(validity) < 2 * window:
        return False
    means = _window_means(validity, window)
    return bool(means[-1] < means.max() / 2)


def _window_means(validity: Sequence[float], window: int) -> np.ndarray:
    return np.convolve(validity, np.ones(window) / window, mode="valid")


def probe_form(text: str) -> str:
    """The form of a probe: its first words, lowercased ("how many", "is there", "make it")."""
    return " ".join(text.lower().split()[:FORM_WORDS])


def crowding_key(measure: str, text: str, consensus: str) -> str:
    """What the charge's ``measure`` finds alike in a probe: its form, its consensus answer, or its
    whole text, lowercased and spaced as its form is."""
    if measure == "form":
        return probe_form(text)
    return consensus if measure == "answer" else " ".join(text.lower().split())


def training_sources(settings: GRPOSettings) -> list[SourceImage]:
    """The training images: the folder's, or the domain's (a stream apart from the audit's)."""
    return load_sources(settings.image_folder, settings.domain, settings.images, 100_000 + settings.seed,
                        limit=settings.limit)  # fmt: skip


def training_rows(settings: GRPOSettings, sources: Sequence[SourceImage]) -> list[dict[str, Any]]:
    """One row per training image and enabled path that the image allows (caption and edit
    ask the image's original question, so they need one): the prompt, the image and its
    index in ``sources``, shuffled reproducibly."""
    rows = []
    for index, source in enumerate(sources):
        for task in settings.tasks:
            if task == "question" or source.question is not None:
                rows.append({"prompt": [{"role": "user", "content": PROMPTS[settings.prompts][task]}],
                             "image": source.picture.image, "task": task, "source": index})  # fmt: skip
    order = np.random.default_rng(settings.seed).permutation(len(rows))
    return [rows[i] for i in order]


def read_curves(out: Path, upto: int | None = None) -> dict[str, list[float]]:
    """The logged training curves by name (the report plots them), up to step ``upto``."""
    path = out / CURVES
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    rows = [r for r in rows if upto is None or r["step"] <= upto]
    names = [k for k in (rows[0] if rows else {}) if k != "step"]
    return {name: [r[name] for r in rows] for name in names}


def write_card(folder: Path, settings: GRPOSettings, curves: dict[str, list[float]], step: int,
               **extra: Any) -> None:  # fmt: skip
    """The card that makes a folder load as an auditor, with its prompts and curves."""
    write_model_card(folder, {"role": "auditor", "prompts": settings.prompts, "task": "audit", "grpo_step": step,
                              "grpo": dataclasses.asdict(settings),
                              "curves": {f"GRPO {k}": v for k, v in curves.items()}, **extra})  # fmt: skip


def grpo_config(settings: GRPOSettings, out: Path, progress: bool) -> Any:
    """TRL's GRPOConfig for the settings: on the CPU or on the GPU that ``device`` names."""
    from trl import GRPOConfig

    on_cpu = settings.device == "cpu"
    return GRPOConfig(
        output_dir=str(out), use_cpu=on_cpu, bf16=not on_cpu and settings.dtype == "bfloat16",
        gradient_checkpointing=False, use_vllm=False,
        per_device_train_batch_size=settings.train_batch_size, num_generations=settings.group_size,
        max_completion_length=96, temperature=settings.temperature, beta=settings.kl, learning_rate=settings.lr,
        lr_scheduler_type="cosine_with_min_lr", lr_scheduler_kwargs={"min_lr_rate": settings.min_lr_ratio},
        warmup_steps=settings.warmup_fraction, max_steps=settings.steps, save_strategy="steps",
        save_steps=settings.save_every, logging_steps=10, report_to=[], seed=settings.seed,
        scale_rewards=settings.scale_rewards, disable_tqdm=not progress, dataloader_num_workers=0,
    )  # fmt: skip


def train_auditor(settings: GRPOSettings, out: Path, resume: bool = False, final: Path | None = None,
                  progress: bool = True) -> Path:  # fmt: skip
    """Train an auditor into ``out`` (checkpoints every ``save_every`` steps, curves.jsonl);
    with ``resume``, continue from the last checkpoint there. Returns the final auditor's
    folder (``final``, else ``out/final``), loadable as ``--auditor hf:FOLDER``."""
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText, TrainerCallback
    from trl import GRPOTrainer

    from auditdm.models.hf import load_pretrained, load_processor

    settings = _settings_for(settings, out, resume)
    checkpoint = _last_checkpoint(out) if resume else None
    if checkpoint is not None:  # curves logged after the checkpoint are redone by the resumed run
        kept = [line for line in (out / CURVES).read_text().splitlines() if json.loads(line)["step"] <= checkpoint[1]]
        write_text(out / CURVES, "".join(line + "\n" for line in kept))
    source = ModelSpec.parse(auditor_spec(settings.auditor)).resolve()
    check_synthesizer(settings.generator, settings.editor)
    panel = load_panel(settings.target, settings.references, settings.judge, settings.quorum, settings.min_confidence,
                       max_new_tokens=settings.max_new_tokens, **model_options(settings))  # fmt: skip
    sources = training_sources(settings)
    synthesizer = load_synthesizer(settings.generator, settings.editor, settings.synthesis_options())
    if not resume:  # only once the models load: a bad option leaves no folder that blocks the next try
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / SETTINGS, json.dumps(dataclasses.asdict(settings), indent=2) + "\n")
    explorer = FormExplorer(settings.explore, settings.group_size, settings.prompts, settings.seed) \
        if settings.explore else None
    reward = AuditReward(panel, synthesizer, sources, settings.novelty, settings.memory, out / CURVES,
                         settings.novelty_of, settings.novelty_as, settings.crowding, explorer,
                         settings.crowding_of, settings.novelty_power, settings.no_consensus_charge)  # fmt: skip
    if checkpoint is not None and (checkpoint[0] / REWARD_STATE).is_file():  # a checkpoint of before has none
        reward.restore(json.loads((checkpoint[0] / REWARD_STATE).read_text()))
    model = load_pretrained(AutoModelForImageTextToText, source, settings.revision, use_safetensors=True,
                            dtype=settings.dtype, trust_remote_code=settings.trust_remote_code)  # fmt: skip
    processor = load_processor(source, settings.revision, settings.trust_remote_code)
    if processor.chat_template is None:  # TRL writes the prompts through it
        raise UserError(f"{settings.auditor} cannot be trained as an auditor: it has no chat template")
    peft_config = None
    if settings.lora_rank:
        from peft import LoraConfig

        peft_config = LoraConfig(r=settings.lora_rank, lora_alpha=2 * settings.lora_rank, target_modules="all-linear")

    def forms() -> dict[str, Any]:  # what the explorer knows, for an audit's --explore
        return {"forms": explorer.known()} if explorer else {}

    class Cards(TrainerCallback):  # type: ignore[misc]
        """Makes every checkpoint a loadable auditor: the card with its prompts and curves."""

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            step = state.global_step
            write_text(out / f"checkpoint-{step}" / REWARD_STATE, json.dumps(reward.state()))
            write_card(out / f"checkpoint-{step}", settings, read_curves(out, step), step, **forms())

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            control.should_training_stop |= diverged(reward.validity)

    rewards: list[Any] = [reward]  # a callable object, as TRL's reward functions may be
    with warnings.catch_warnings():  # that rollout_func is experimental in TRL is ours to know, not the user's
        warnings.filterwarnings("ignore", message="You are using 'rollout_func'")
        trainer = GRPOTrainer(model=model, reward_funcs=rewards, args=grpo_config(settings, out, progress),
                              processing_class=processor,
                              train_dataset=Dataset.from_list(training_rows(settings, sources)),
                              peft_config=peft_config, callbacks=[Cards()],
                              rollout_func=explorer.rollout if explorer else None)  # fmt: skip
    if not progress:  # its logs would go to stdout, where --json output goes
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(checkpoint[0]) if checkpoint else None)
    seconds = time.perf_counter() - started
    check_not_diverged(out, trainer.state.global_step, reward.validity)
    final = final or out / "final"
    trained: Any = trainer.model
    if settings.lora_rank:
        trained = trained.merge_and_unload()
    trained.save_pretrained(final, safe_serialization=True)
    processor.save_pretrained(final)
    # A resumed run counts only its own time.
    write_card(final, settings, read_curves(out), settings.steps, train_seconds=round(seconds, 1), **forms())
    return final


def check_not_diverged(out: Path, step: int, validity: Sequence[float]) -> None:
    """A clear error, naming the last checkpoint before it, if the training in ``out`` has diverged."""
    if not diverged(validity):
        return
    best = _window_means(validity, DIVERGED_WINDOW).max()
    before = [path for n, path in _checkpoints(out) if n <= step - DIVERGED_WINDOW]
    fallback = f"{before[-1]} is the last checkpoint before it: audit with it, or train" if before else "Train"
    raise UserError(f"{out}: the training diverged and was stopped at step {step}: over its last {DIVERGED_WINDOW} "
                    f"steps {100 * float(np.mean(validity[-DIVERGED_WINDOW:])):.0f} % of the auditor's probes were "
                    f"valid, against {100 * best:.0f} % at best. {fallback} again with another --seed or a lower "
                    "--lr (no final auditor was written)")  # fmt: skip


def _settings_for(settings: GRPOSettings, out: Path, resume: bool) -> GRPOSettings:
    saved = out / SETTINGS
    if resume:
        if not saved.is_file():
            raise UserError(f"{out}: no auditor training to resume here (no {SETTINGS})")
        return GRPOSettings.read(saved)
    if saved.exists():
        raise UserError(f"{out} already holds an auditor training: resume it with --resume, or pick another --out")
    return settings


def _checkpoints(out: Path) -> list[tuple[int, Path]]:
    return sorted((int(p.name.split("-")[1]), p) for p in out.glob("checkpoint-*") if p.name.split("-")[1].isdigit())


def _last_checkpoint(out: Path) -> tuple[Path, int] | None:
    steps = _checkpoints(out)
    return (steps[-1][1], steps[-1][0]) if steps else None
