"""Print how far fine-tuning on right labels moves the target: the ceiling of rectification.

    python benchmarks/rectify_ceiling.py --pairs 100 --pairs 400 --pairs 1600

Rectification can at best teach the target what perfectly labelled pairs teach it. This draws
N world questions with the oracle's answers (from a stream apart from the held-out benchmark)
on the given skills (default: the target's weak skills the consensus can see), mixes them with
`--mix` times as many examples of the target's own training data, fine-tunes the target (world:target,
or `--target`: any model `auditdm world train` wrote, e.g. one trained longer) with
rectification's settings (auditdm.finetune, the defaults of `auditdm rectify`), and prints the
held-out accuracy per skill before and after, as `auditdm world eval` measures it.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from itertools import islice
from pathlib import Path

from auditdm.backends import ModelSpec, load_domain
from auditdm.finetune import FinetuneSettings, finetune
from auditdm.models import load_model, read_card
from auditdm.records import Labelled
from auditdm.verify import accuracy_by_skill
from auditdm.world.skills import sample_example

VISIBLE_WEAK = ("color", "shape", "counting", "small_object", "text", "texture", "hallucination", "direction",
                "distraction")  # fmt: skip  # BENCHMARKS.md section 1: weak, and the majority >= 85 % (counting: 71.5)


def held_out(model: str, per_skill: int) -> dict[str, float]:
    examples = load_domain("world").benchmark(per_skill)
    answers = load_model(model).generate([e.image for e in examples], [e.question for e in examples])
    scores = accuracy_by_skill(examples, answers)
    return {"overall": sum(scores.values()) / len(scores), **scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="world:target", help="the model to fine-tune (a zoo model's card)")
    parser.add_argument("--pairs", type=int, action="append", help="right pairs to fine-tune on (repeatable)")
    parser.add_argument("--skills", default=",".join(VISIBLE_WEAK), help="skills the pairs ask about")
    parser.add_argument("--epochs", type=float, default=FinetuneSettings.epochs)
    parser.add_argument("--lr", type=float, default=FinetuneSettings.lr)
    parser.add_argument("--mix", type=float, default=1.0, help="examples of the target's own data per pair")
    parser.add_argument("--per-skill", type=int, default=100, help="held-out questions per skill")
    parser.add_argument("--own-only", action="store_true",
                        help="the target's own data in place of the pairs, as many examples in all: what the "
                             "same steps give without a single new label")  # fmt: skip
    args = parser.parse_args()
    skills = args.skills.split(",")
    rows = {"before": held_out(args.target, args.per_skill)}
    card = read_card(ModelSpec.parse(args.target).folder())
    for count in args.pairs or [400]:
        rng = random.Random(f"rectify-ceiling:{count}")
        pairs = [sample_example(rng, skills[i % len(skills)]) for i in range(0 if args.own_only else count)]
        examples = [Labelled(e.image(), e.question.text(), e.answer, e.skill) for e in pairs]
        own = round(args.mix * count) + (count if args.own_only else 0)
        examples += list(islice(load_domain("world").recipe_data(card, 800_000 + count) or [], own))
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "model"
            finetune(args.target, examples, out, FinetuneSettings(epochs=args.epochs, lr=args.lr), progress=False)
            rows[f"{own} own only" if args.own_only else f"{count} right pairs"] = held_out(f"hf:{out}", args.per_skill)
    columns = list(rows)
    print(f"{'skill':<14}" + "".join(f"{c:>18}" for c in columns))
    for skill in rows["before"]:
        print(f"{skill:<14}" + "".join(f"{100 * rows[c][skill]:17.1f}%" for c in columns))


if __name__ == "__main__":
    main()
