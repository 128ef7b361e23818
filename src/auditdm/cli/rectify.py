"""``auditdm rectify``: turn what the audit finds into training data, fine-tune the target on
it, train a new auditor against the result, and go round again."""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path
from typing import Any

from auditdm.cli import comma_list, config_from, executor_flags, field_option, model_flags, quiet_flag
from auditdm.rectify import BALANCE, KEEP, RectifyConfig
from auditdm.records import SYNTHESES


def _optional(text: str) -> str | None:
    return None if text.lower() in ("", "none") else text


def _rectify(args: argparse.Namespace) -> int:
    from auditdm.rectify import resume_rectify, start_rectify

    progress = not (args.json or args.quiet)
    if args.resume:
        result = resume_rectify(args.resume, progress=progress)
    else:
        out = args.out or Path("runs") / time.strftime("rectify-%Y%m%d-%H%M%S")
        result = start_rectify(config_from(RectifyConfig, args), out, progress=progress)
    print(json.dumps(result, indent=2) if args.json else format_rectification(result))
    return 0


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def format_rectification(result: dict[str, Any]) -> str:
    """The held-out accuracy of the target before and after each iteration, as lines."""
    before = result["before"] or {}
    lines = [f"rectification of {result['target']}: held-out accuracy {_pct(before.get('overall'))} before"]
    for it in result["iterations"]:
        control = f", control {_pct(it['control']['overall'])}" if it["control"] else ""
        lines.append(f"  iteration {it['iteration']}: {it['pairs']} pairs (labels right {_pct(it['label_accuracy'])}), "
                     f"accuracy {_pct(it['overall'])}{control}, {it['seconds'] / 60:.1f} min -> {it['model']}")  # fmt: skip
    if result["compare_to"]:
        lines.append(f"  {result['compare_to']['name']}: {_pct(result['compare_to']['overall'])}")
    return "\n".join(lines)


def add_rectify(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rectify = commands.add_parser(
        "rectify", help="fine-tune the target on what the audit finds, and audit again",
        description="Rectification (the paper's second half): the auditor writes probes on a pool of unlabelled "
        "images; the references' consensus labels them; the pairs the target gets wrong (--keep all: every labelled "
        "pair) are mixed with the target's own training data and the target is fine-tuned on them (TRL's "
        "SFTTrainer); a new auditor is trained by GRPO against the fine-tuned target; repeat. On world images the "
        "held-out benchmark measures every skill before and after. Writes OUT/rectification.json; resumable.",
    )  # fmt: skip
    option = functools.partial(field_option, rectify, RectifyConfig)
    rectify.add_argument("-o", "--out", type=Path, help="run directory (default: runs/rectify-DATE-TIME)")
    rectify.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a stopped rectification (other "
                         "options are taken from the run)")  # fmt: skip
    option("--target", "the model to rectify: world:NAME or hf:FOLDER (default: %(default)s)")
    option("--references", "reference models (default: every world reference)", type=comma_list, metavar="A,B,...")
    option("--auditor", "the first iteration's auditor (default: %(default)s)")
    option("--control", "also fine-tune a control copy on as many pairs from the untrained auditor "
           "(the paper's same images without AuditDM)", action="store_true")  # fmt: skip
    option("--control-auditor", "the control's auditor, under the baseline prompts (default: %(default)s)")
    option("--compare-to", "a model evaluated beside it, 'none' for none (default: %(default)s)", type=_optional)
    option("--pool", "a folder of unlabelled images (default: world images, kept apart from the benchmark)")
    option("--limit", "at most N images of --pool, the first in name order; the others are not read "
           "(default: all)", type=int, metavar="N")  # fmt: skip
    option("--pool-size", "world images in the pool (default: %(default)s)", type=int)
    option("--probes", "probes written per iteration (default: %(default)s)", type=int)
    option("--pairings", "the probes' pairings: question = (Q*, I), both = (Q*, I*), and on world images, whose "
           "images carry questions, image = (Q, I*) (default: question,both)", type=comma_list,
           metavar="P,...")  # fmt: skip
    option("--synthesis", f"how new images are made: {', '.join(SYNTHESES)} (default: both)", type=comma_list,
           metavar="S,...", field="syntheses")  # fmt: skip
    option("--fraction", "the share of the generated pairs that trains the target (default: %(default)s)",
           type=float)
    option("--keep", f"which labelled pairs train the target: {', '.join(KEEP)} (default: %(default)s)", choices=KEEP)
    option("--per-question", "at most this many pairs ask (nearly) the same question, on different images "
           "(default: %(default)s)", type=int)  # fmt: skip
    option("--max-answer-share", "at most this share of the pairs of one question form give the same answer; "
           "the commonest answers are thinned, and a form with one answer only is dropped (default: %(default)s; "
           "1: no limit)", type=float, metavar="S")  # fmt: skip
    option("--balance", "how a form's answers are evened out: thin = drop the commonest; fill = first add pairs "
           "the target already answers right to its rarer answers (at most as many as it has flagged pairs), then "
           "thin (default: %(default)s)", choices=BALANCE)  # fmt: skip
    option("--quorum", "references that must agree (default: all)", type=int)
    option("--min-confidence", "a reference less sure than P of its answer abstains (default: none do)", type=float,
           metavar="P")  # fmt: skip
    option("--judge", "exact, embedding, embedding:THRESHOLD or openai:MODEL@BASE_URL (default: %(default)s)")
    option("--iterations", "(default: %(default)s, as in the paper)", type=int)
    option("--mix", "examples of the target's own training data per generated pair (default: %(default)s)", type=float)
    option("--mix-data", "the data to mix in: a datasets folder, Parquet, or LLaVA-style JSON of images, questions "
           "and answers (default: the target's own training data where auditdm knows it: a world: model's, or "
           "that of an hf: folder `auditdm world train` wrote)", metavar="PATH")  # fmt: skip
    option("--epochs", "fine-tuning passes over each iteration's data (default: %(default)s)", type=float)
    option("--train-batch-size", "examples per fine-tuning step (default: %(default)s)", type=int, metavar="N")
    option("--lr", "fine-tuning learning rate (default: %(default)s)", type=float)
    option("--lora-rank", "fine-tune LoRA adapters of this rank instead of every weight (default: off)", type=int)
    option("--auditor-steps", "GRPO steps of each new auditor (default: %(default)s)", type=int)
    option("--auditor-recipe", "train each new auditor as this train-auditor run was trained (its folder): its "
           "novelty, crowding, exploration, learning rate, ... (default: train-auditor's defaults)", metavar="RUN_DIR")
    option("--auditor-checkpoints", "checkpoints of each new auditor that write probes (default: %(default)s)",
           type=int)  # fmt: skip
    option("--eval-questions", "held-out questions per skill (default: %(default)s)", type=int)
    option("--seed", "(default: %(default)s)", type=int)
    option("--device", "where models run and train: cpu, cuda, ... (default: %(default)s)")
    option("--dtype", "model dtype, e.g. bfloat16 (default: as saved)")
    executor_flags(option)
    model_flags(option)
    rectify.add_argument("--json", action="store_true", help="print rectification.json instead of text")
    quiet_flag(rectify)
    rectify.set_defaults(handler=_rectify)
