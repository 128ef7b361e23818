"""``auditdm train-auditor``: GRPO training of an auditor against a target and references."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from auditdm.cli import comma_list, config_from, field_option, model_flags, optional_float, quiet_flag, synthesis_flags
from auditdm.grpo import NO_CONSENSUS_CHARGES, NOVELTY_AS, NOVELTY_OF, SCALE_REWARDS, GRPOSettings
from auditdm.prompts import PROMPT_SETS
from auditdm.records import TASKS


def _train_auditor(args: argparse.Namespace) -> int:
    from auditdm.grpo import train_auditor

    final = train_auditor(config_from(GRPOSettings, args), args.out, resume=args.resume, final=args.final,
                          progress=not args.quiet)  # fmt: skip
    print(f"trained auditor: {final} (audit with it: auditdm audit --auditor {final})")
    return 0


def add_train_auditor(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    train = commands.add_parser(
        "train-auditor", help="train an auditor with GRPO to find the target's failures",
        description="Fine-tune an auditor with GRPO (TRL): for each training image, a group of probes is sampled "
        "across the enabled paths; each earns its audit score (the target against the references' consensus), "
        "plus an optional novelty bonus; advantages are normalised within the group; only the auditor learns. "
        "Checkpoints every --save-every steps (each usable as --auditor), curves in OUT/curves.jsonl, resumable.",
    )  # fmt: skip

    option = functools.partial(field_option, train, GRPOSettings)
    train.add_argument("-o", "--out", type=Path, required=True, help="training folder (checkpoints, curves)")
    train.add_argument("--resume", action="store_true", help="continue the training in --out from its last checkpoint")
    train.add_argument("--final", type=Path, help="where to save the trained auditor (default: OUT/final)")
    option("--auditor", "auditor to start from (default: %(default)s)")
    option("--target", "(default: %(default)s)")
    option("--references", "(default: every world reference)", type=comma_list, metavar="A,B,...")
    option("--quorum", "references that must agree (default: all)", type=int)
    option("--min-confidence", "a reference whose probability of its own answer is below P abstains, so "
           "shared guesses do not pay (default: %(default)s; none: no gate)", type=optional_float, metavar="P")  # fmt: skip
    option("--judge", "exact, embedding, embedding:THRESHOLD or openai:MODEL@BASE_URL (default: %(default)s)")
    option("--paths", f"enabled paths: {', '.join(TASKS)}; question is (Q*, I), caption and edit (Q, I*) "
           "(default: all)", type=comma_list, metavar="P,...", field="tasks")  # fmt: skip
    option("--prompts", "(default: %(default)s)", choices=PROMPT_SETS)
    option("--images", "world training images (default: %(default)s)", type=int)
    option("--image-folder", "train on the images of this folder instead (caption and edit need images with "
           "an original question, so only question probes are made from a folder)")  # fmt: skip
    option("--limit", "at most N images of --image-folder, the first in name order; the others are not read "
           "(default: all)", type=int, metavar="N")  # fmt: skip
    option("--group-size", "G, probes per image and path (default: %(default)s)", type=int)
    option("--train-batch-size", "probes per GRPO step, a multiple of --group-size (default: %(default)s)", type=int,
           metavar="N")  # fmt: skip
    option("--steps", "(default: %(default)s)", type=int)
    option("--lr", "peak learning rate (default: %(default)s)", type=float)
    option("--min-lr-ratio", "cosine floor, as a share of --lr (default: 1/3, the paper's 1e-6 of 3e-6)", type=float)
    option("--warmup", "warm-up share of the steps (default: %(default)s)", type=float, field="warmup_fraction")
    option("--kl", "KL coefficient beta (default: %(default)s)", type=float)
    option("--novelty", "how much novelty counts: the weight of its discount or bonus; 0 turns it off "
           "(default: %(default)s)", type=float)
    option("--novelty-of", "compare flagged probes by their text (probe), by the references' consensus answer "
           "(answer), or by their first two words (form: n is 1 minus the share of recent flags of the same "
           "form) (default: %(default)s)", choices=NOVELTY_OF)  # fmt: skip
    option("--novelty-as", "a flag earns 1 + NOVELTY * n (bonus) or 1 - NOVELTY * (1 - n) (discount: a failure "
           "found again is worth less, so collapsing onto it stops paying), where n is its novelty "
           "(default: %(default)s)", choices=NOVELTY_AS)  # fmt: skip
    option("--novelty-power", "raise n to this power first: above 1, a failure found often is worth much less, "
           "so a form that flags easily takes a smaller share of the flags (default: %(default)s)", type=float,
           metavar="K")  # fmt: skip
    option("--scale-rewards", "divide each probe's advantage by its group's reward spread (group), the step's "
           "(batch: a discounted flag then stays small), or nothing (none) (default: %(default)s)",
           choices=SCALE_REWARDS)  # fmt: skip
    option("--crowding", "charge every probe W times the share of the recent probes of its path with a consensus "
           "that are like it (--crowding-of), a probe without one W: the auditor keeps writing several kinds "
           "of probe instead of settling on one; 0 turns it off (default: %(default)s)", type=float,
           metavar="W")  # fmt: skip
    option("--crowding-of", "what makes probes alike for the charge: their first two words (form), the "
           "references' consensus answer (answer), or their whole text (probe: one question asked of every image "
           "is crowded, the other questions of its form are not); several join with '+', each charged in full "
           "or at a share of W: probe+form:0.5 (default: %(default)s)", metavar="MEASURES")  # fmt: skip
    option("--no-consensus-charge", "what a valid probe the references did not answer together pays: the whole W, as "
           "an invalid one does (whole), or what the most crowded probe of its path pays (crowded) "
           "(default: %(default)s)", choices=NO_CONSENSUS_CHARGES)  # fmt: skip
    option("--explore", "the share of each group's probes that start with a form written before with a consensus, "
           "drawn at random, so that a group of one form still holds others; 0: off (default: %(default)s)",
           type=float, metavar="SHARE")  # fmt: skip
    option("--save-every", "checkpoint every N steps (default: %(default)s)", type=int)
    option("--temperature", "sampling temperature (default: %(default)s)", type=float)
    option("--lora-rank", "train LoRA adapters of this rank instead of all weights (for large hf: auditors; "
           "default: off)", type=int)  # fmt: skip
    option("--seed", "(default: %(default)s)", type=int)
    option("--device", "where the auditor trains and the models run: cpu, cuda (the first visible GPU), ... "
           "(default: %(default)s)")  # fmt: skip
    option("--dtype", "model dtype, e.g. bfloat16 (default: as saved)")
    model_flags(option)
    synthesis_flags(option)
    quiet_flag(train)
    train.set_defaults(handler=_train_auditor)
