"""The ``auditdm`` command line.

Every subcommand has ``--help``. Errors that come from the user's input print one line
naming the input and exit with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from auditdm.errors import UserError

Handler = Callable[[argparse.Namespace], int]


def _world_render(args: argparse.Namespace) -> int:
    from auditdm.world.render import save_image
    from auditdm.world.synth import generate

    image, scene = generate(args.caption, seed=args.seed)
    save_image(image, scene, args.output)
    print(f"wrote {args.output} ({len(scene.items)} items, {scene.time_of_day}, {scene.weather})")
    return 0


def _world_edit(args: argparse.Namespace) -> int:
    from auditdm.world.render import save_image
    from auditdm.world.synth import edit

    image = _open_image(args.image)
    edited, scene = edit(image, args.command, seed=args.seed, source=str(args.image))
    save_image(edited, scene, args.output)
    print(f"wrote {args.output}")
    return 0


def _world_ask(args: argparse.Namespace) -> int:
    from auditdm.world.oracle import answer, skill_of
    from auditdm.world.parse import parse_question
    from auditdm.world.render import scene_of

    image = _open_image(args.image)
    if args.model:
        from auditdm.models import load_answerer

        model = load_answerer(args.model)
        print(model.answer([image], [args.question])[0])
        return 0
    question = parse_question(args.question)
    scene = scene_of(image, source=str(args.image))
    truth = answer(question, scene)
    print(truth.answer if truth.answer is not None else f"({truth.status}: {truth.reason})")
    if args.verbose:
        print(f"skill: {skill_of(question, scene)}", file=sys.stderr)
    return 0


def _world_train(args: argparse.Namespace) -> int:
    from auditdm.world.zoo.recipes import select_recipes
    from auditdm.world.zoo.train_zoo import train_zoo

    recipes = select_recipes(args.only, args.set, smoke_run=args.smoke, rename=args.name)
    train_zoo(recipes, Path(args.out), progress=not args.quiet)
    return 0


def _world_eval(args: argparse.Namespace) -> int:
    from auditdm.world.zoo.evaluate import evaluate_zoo, format_table

    report = evaluate_zoo(
        zoo_dir=Path(args.zoo) if args.zoo else None,
        names=args.models,
        per_skill=args.per_skill,
        progress=not args.json,
    )
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0


def _audit(args: argparse.Namespace) -> int:
    from auditdm.audit import AuditConfig, resume_audit, start_audit
    from auditdm.summary import format_summary

    progress = not args.json
    if args.resume:
        summary = resume_audit(args.resume, progress=progress)
    else:
        config = AuditConfig(
            target=args.target, references=tuple(args.references or ()), auditor=args.auditor, prompts=args.prompts,
            pairings=tuple(args.pairings), syntheses=tuple(args.synthesis), images=args.images,
            image_count=args.image_count, probes=args.probes, quorum=args.quorum, judge=args.judge,
            temperature=args.temperature, seed=args.seed, batch_size=args.batch_size,
            weak_skill_questions=args.weak_skill_questions,
        )  # fmt: skip
        out = args.out or Path("runs") / time.strftime("audit-%Y%m%d-%H%M%S")
        summary = start_audit(config, out, progress=progress)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def _export(args: argparse.Namespace) -> int:
    from auditdm.export import export_run

    written = export_run(args.run_dir, args.format, args.output)
    print(f"wrote {written}")
    return 0


def _open_image(path: Path):  # type: ignore[no-untyped-def]
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            return image
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError) as error:
        raise UserError(f"{path}: not a readable image ({error})") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the whole command line."""
    parser = argparse.ArgumentParser(
        prog="auditdm",
        description="Audit multimodal models: find where a model fails, explain the failures "
        "as weakness categories, and make the data that fixes them (AuditDM).",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    world = commands.add_parser(
        "world",
        help="the embedded world: render, edit, ask, train and evaluate its models",
        description="The embedded world: procedural images with an exact oracle, and a zoo of "
        "small vision-language models trained on it.",
    )
    world_commands = world.add_subparsers(dest="world_command", required=True, metavar="ACTION")

    render = world_commands.add_parser("render", help="draw the image a caption describes (generator G)",
                                       description="Draw the image a world caption describes.")  # fmt: skip
    render.add_argument("caption", help='e.g. "a large red circle at the top left, a clock showing 3:30 at the center"')
    render.add_argument("-o", "--output", type=Path, required=True, help="PNG to write (carries its scene)")
    render.add_argument("--seed", type=int, default=0, help="fills in what the caption leaves unsaid")
    render.set_defaults(handler=_world_render)

    edit = world_commands.add_parser("edit", help="apply an edit command to a world image (editor E)",
                                     description="Apply an edit command to a world PNG.")  # fmt: skip
    edit.add_argument("image", type=Path, help="a PNG written by the world (it carries its scene)")
    edit.add_argument("command", help='e.g. "make the circle blue", "set the clock to 9:30", "make it night"')
    edit.add_argument("-o", "--output", type=Path, required=True, help="PNG to write")
    edit.add_argument("--seed", type=int, default=0, help="fills in what the command leaves unsaid")
    edit.set_defaults(handler=_world_edit)

    ask = world_commands.add_parser("ask", help="answer a question about an image (oracle or a model)",
                                    description="Answer a question about an image: exactly, with the "
                                    "oracle (world PNGs), or with a model given by --model.")  # fmt: skip
    ask.add_argument("image", type=Path)
    ask.add_argument("question", help='e.g. "what time does the clock show ?"')
    ask.add_argument("--model", help="answer with this model instead of the oracle (world:target, hf:PATH)")
    ask.add_argument("-v", "--verbose", action="store_true", help="also print the skill the question tests")
    ask.set_defaults(handler=_world_ask)

    train = world_commands.add_parser(
        "train", help="train the model zoo from scratch",
        description="Train the zoo's models from scratch, reproducibly, from their recipes "
        "(auditdm.world.zoo.recipes). Override any recipe field with --set.",
    )  # fmt: skip
    train.add_argument("--out", default="auditdm-zoo", help="folder to write one model folder per recipe into "
                       "(default: %(default)s)")  # fmt: skip
    train.add_argument("--only", action="append", metavar="NAME", help="train only this recipe (repeatable)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a recipe field: steps=3000, seed=5, lr=1e-3, batch_size=32, "
                       "size.image_size=96, size.text_layers=2, weights.clock=0.2 (repeatable)")  # fmt: skip
    train.add_argument("--name", help="save the (single) trained recipe under this name, e.g. a variant")
    train.add_argument("--smoke", action="store_true", help="a few steps per model, to check the pipeline")
    train.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    train.set_defaults(handler=_world_train)

    evaluate = world_commands.add_parser(
        "eval", help="evaluate the zoo on the held-out benchmark",
        description="Evaluate zoo models on a fixed held-out benchmark: per-skill accuracy, the "
        "reference majority vote, and the target's weak skills.",
    )  # fmt: skip
    evaluate.add_argument("--zoo", help="a folder written by `world train` (default: the shipped zoo)")
    evaluate.add_argument("--models", nargs="+", metavar="NAME", help="evaluate only these models")
    evaluate.add_argument("--per-skill", type=int, default=200, help="questions per skill (default: %(default)s)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object (SPEC section 6)")
    evaluate.set_defaults(handler=_world_eval)
    _add_audit(commands)
    _add_export(commands)
    return parser


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _add_audit(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = commands.add_parser(
        "audit", help="find where a target model fails (the main job)",
        description="Audit a target model: an auditor writes probes (new questions, and new images from a "
        "caption or an edit command), the target and the reference models answer, and every probe where the "
        "target disagrees with the references' consensus is flagged. Writes a run directory (SQLite store, "
        "images, summary.json); on world images the oracle verifies what was flagged. With no options: "
        "world:target against the world references, with the baseline auditor, on 40 world images.",
    )  # fmt: skip
    audit.add_argument("--target", default="world:target", help="model to audit: world:NAME or hf:PATH "
                       "(default: %(default)s)")  # fmt: skip
    audit.add_argument("--references", type=_csv, metavar="A,B,...", help="reference models, comma-separated "
                       "(default: every world reference); one reference = model-comparison mode")  # fmt: skip
    audit.add_argument("--auditor", default="world:baseline", help="the auditor: world:NAME or hf:PATH "
                       "(default: %(default)s)")  # fmt: skip
    audit.add_argument("--prompts", choices=("auditdm", "baseline"), help="the auditor's prompt set (default: the "
                       "one the auditor was trained for; auditdm for hf: auditors)")  # fmt: skip
    audit.add_argument("--pairings", type=_csv, default=["question", "image", "both"], metavar="P,...",
                       help="question = (Q*, I), image = (Q, I*), both = (Q*, I*) (default: all three)")
    audit.add_argument("--synthesis", type=_csv, default=["caption", "edit"], metavar="S,...",
                       help="how new images are made: caption (generator G), edit (editor E) (default: both)")
    audit.add_argument("--images", help="a folder of images to audit on (default: world images)")
    audit.add_argument("--image-count", type=int, default=40, help="world images to use (default: %(default)s)")
    audit.add_argument("--probes", type=int, default=200, help="probes to make (default: %(default)s)")
    audit.add_argument("--quorum", type=int, help="references that must agree for a consensus (default: all)")
    audit.add_argument("--judge", default="exact", help="answer judge: exact, embedding, embedding:THRESHOLD "
                       "(default: %(default)s)")  # fmt: skip
    audit.add_argument("--temperature", type=float, default=1.0, help="the auditor's sampling temperature "
                       "(default: %(default)s)")  # fmt: skip
    audit.add_argument("--seed", type=int, default=0, help="fixes the images and every sample (default: %(default)s)")
    audit.add_argument("--batch-size", type=int, default=50, help="probes made and stored together "
                       "(default: %(default)s)")  # fmt: skip
    audit.add_argument("--weak-skill-questions", type=int, default=100, help="held-out questions per skill for "
                       "finding the target's weak skills, world models only (default: %(default)s)")  # fmt: skip
    audit.add_argument("-o", "--out", type=Path, help="run directory to write (default: runs/audit-DATE-TIME)")
    audit.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a stopped audit (other options "
                       "are taken from the run)")  # fmt: skip
    audit.add_argument("--json", action="store_true", help="print the summary as one JSON object (SPEC section 6)")
    audit.set_defaults(handler=_audit)


def _add_export(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    export = commands.add_parser("export", help="export a run's probes to JSONL or Parquet",
                                 description="Export every probe of a run, with its answers, one row each.")  # fmt: skip
    export.add_argument("run_dir", type=Path)
    export.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl")
    export.add_argument("-o", "--output", type=Path, help="file to write (default: RUN_DIR/probes.FORMAT)")
    export.set_defaults(handler=_export)


def _quiet_libraries() -> None:
    """Our bars say what is going on; the per-file loading bars of transformers (which follow
    huggingface_hub's switch, read at import) only add noise."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    try:
        handler: Handler = args.handler
        return handler(args)
    except UserError as error:
        if args.debug:
            raise
        print(f"auditdm: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("auditdm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
