"""``auditdm train-auditor``: GRPO training of an auditor against a target and references."""

from __future__ import annotations

import argparse
from pathlib import Path

from auditdm.cli.runs import comma_list


def _train_auditor(args: argparse.Namespace) -> int:
    from auditdm.grpo import GRPOSettings, train_auditor

    settings = GRPOSettings(
        auditor=args.auditor, target=args.target, references=tuple(args.references or ()), quorum=args.quorum,
        min_confidence=args.min_confidence,
        judge=args.judge, tasks=tuple(args.paths), prompts=args.prompts, images=args.images,
        group_size=args.group_size, batch_size=args.batch_size, steps=args.steps, lr=args.lr,
        min_lr_ratio=args.min_lr_ratio, warmup_fraction=args.warmup, kl=args.kl, novelty=args.novelty,
        novelty_of=args.novelty_of, novelty_as=args.novelty_as, save_every=args.save_every, temperature=args.temperature,
        lora_rank=args.lora_rank, seed=args.seed,
    )  # fmt: skip
    final = train_auditor(settings, args.out, resume=args.resume, final=args.final)
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
    train.add_argument("-o", "--out", type=Path, required=True, help="training folder (checkpoints, curves)")
    train.add_argument("--resume", action="store_true", help="continue the training in --out from its last checkpoint")
    train.add_argument("--final", type=Path, help="where to save the trained auditor (default: OUT/final)")
    train.add_argument("--auditor", default="world:baseline", help="auditor to start from (default: %(default)s)")
    train.add_argument("--target", default="world:target", help="(default: %(default)s)")
    train.add_argument("--references", type=comma_list, metavar="A,B,...", help="(default: every world reference)")
    train.add_argument("--quorum", type=int, help="references that must agree (default: all)")
    train.add_argument("--min-confidence", type=float, metavar="P", help="a reference whose probability of its "
                       "own answer is below P abstains (default: none do)")  # fmt: skip
    train.add_argument("--judge", default="exact", help="exact, embedding, embedding:THRESHOLD (default: %(default)s)")
    train.add_argument("--paths", type=comma_list, default=["question", "caption", "edit"], metavar="P,...",
                       help="enabled paths: question (Q*, I), caption and edit (Q, I*) (default: all)")
    train.add_argument("--prompts", default="auditdm", choices=("auditdm", "baseline"), help="(default: %(default)s)")
    train.add_argument("--images", type=int, default=512, help="world training images (default: %(default)s)")
    train.add_argument("--group-size", type=int, default=8, help="G, probes per image and path (default: %(default)s)")
    train.add_argument("--batch-size", type=int, default=32, help="probes per step (default: %(default)s)")
    train.add_argument("--steps", type=int, default=1200, help="(default: %(default)s)")
    train.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (default: %(default)s)")
    train.add_argument("--min-lr-ratio", type=float, default=1 / 3, help="cosine floor, as a share of --lr "
                       "(default: 1/3, the paper's 1e-6 of 3e-6)")  # fmt: skip
    train.add_argument("--warmup", type=float, default=0.1, help="warm-up share of the steps (default: %(default)s)")
    train.add_argument("--kl", type=float, default=0.0, help="KL coefficient beta (default: %(default)s)")
    train.add_argument("--novelty", type=float, default=0.1, help="novelty bonus weight; 0 turns it off "
                       "(default: %(default)s)")  # fmt: skip
    train.add_argument("--novelty-of", default="probe", choices=("probe", "answer"),
                       help="compare flagged probes by their text (probe) or by the references' consensus answer "
                       "(answer) (default: %(default)s)")  # fmt: skip
    train.add_argument("--novelty-as", default="bonus", choices=("bonus", "discount"),
                       help="a flag earns 1 + NOVELTY * n (bonus) or 1 - NOVELTY * (1 - n) (discount: a failure "
                       "found again is worth less, so collapsing onto it stops paying), where n is its novelty "
                       "(default: %(default)s)")  # fmt: skip
    train.add_argument("--save-every", type=int, default=300, help="checkpoint every N steps (default: %(default)s)")
    train.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default: %(default)s)")
    train.add_argument("--lora-rank", type=int, default=0, help="train LoRA adapters of this rank instead of all "
                       "weights (for large hf: auditors; default: off)")  # fmt: skip
    train.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    train.set_defaults(handler=_train_auditor)
