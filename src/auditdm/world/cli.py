"""``auditdm world ...``: render, edit, ask, train and evaluate in the embedded world."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

from auditdm.audit import AuditConfig
from auditdm.cli import comma_list, field_option, model_flags, quiet_flag
from auditdm.errors import UserError, check_positive


def _world_render(args: argparse.Namespace) -> int:
    from auditdm.files import check_output
    from auditdm.world.render import save_image
    from auditdm.world.synth import generate

    check_output(args.out)
    image, scene = generate(args.caption, seed=args.seed)
    save_image(image, scene, args.out)
    print(f"wrote {args.out} ({len(scene.items)} items, {scene.time_of_day}, {scene.weather})")
    return 0


def _world_edit(args: argparse.Namespace) -> int:
    from auditdm.files import check_output
    from auditdm.sources import open_image
    from auditdm.world.render import save_image
    from auditdm.world.synth import edit

    check_output(args.out)
    image = open_image(args.image)
    edited, scene = edit(image, args.command, seed=args.seed, source=str(args.image))
    save_image(edited, scene, args.out)
    print(f"wrote {args.out}")
    return 0


def _world_ask(args: argparse.Namespace) -> int:
    from auditdm.sources import open_image
    from auditdm.world.oracle import answer, skill_of
    from auditdm.world.parse import parse_question
    from auditdm.world.render import scene_of

    check_positive(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    image = open_image(args.image)
    if args.model:
        from auditdm.world.zoo.evaluate import ask_model

        options = {"batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens, "revision": args.revision,
                   "trust_remote_code": args.trust_remote_code}  # fmt: skip
        print(ask_model(args.model, image, args.question, **options))
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
    from auditdm.world.zoo.train import train_zoo

    if args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: expected at least 1")
    recipes = select_recipes(args.only, args.set, smoke_run=args.smoke, rename=args.name)
    train_zoo(recipes, args.out, progress=not args.quiet, jobs=args.jobs)
    return 0


def _world_eval(args: argparse.Namespace) -> int:
    from auditdm.world.zoo.evaluate import evaluate_zoo, format_table

    check_positive(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, per_skill=args.per_skill)
    report = evaluate_zoo(
        zoo_dir=Path(args.zoo) if args.zoo else None,
        names=args.models,
        per_skill=args.per_skill,
        progress=not (args.json or args.quiet),
        extra=args.model,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        revision=args.revision,
        trust_remote_code=args.trust_remote_code,
    )
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0


def add_world(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    render.add_argument("-o", "--out", type=Path, required=True, help="PNG to write (carries its scene)")
    render.add_argument("--seed", type=int, default=0, help="fills in what the caption leaves unsaid")
    render.set_defaults(handler=_world_render)

    edit = world_commands.add_parser("edit", help="apply an edit command to a world image (editor E)",
                                     description="Apply an edit command to a world PNG.")  # fmt: skip
    edit.add_argument("image", type=Path, help="a PNG written by the world (it carries its scene)")
    edit.add_argument("command", help='e.g. "make the circle blue", "set the clock to 9:30", "make it night"')
    edit.add_argument("-o", "--out", type=Path, required=True, help="PNG to write")
    edit.add_argument("--seed", type=int, default=0, help="fills in what the command leaves unsaid")
    edit.set_defaults(handler=_world_edit)

    ask = world_commands.add_parser("ask", help="answer a question about an image (oracle or a model)",
                                    description="Answer a question about an image: exactly, with the "
                                    "oracle (world PNGs), or with a model given by --model.")  # fmt: skip
    ask.add_argument("image", type=Path)
    ask.add_argument("question", help='e.g. "what time does the clock show ?"')
    ask.add_argument("--model", help="answer with this model instead of the oracle (world:target, hf:PATH)")
    model_flags(functools.partial(field_option, ask, AuditConfig))  # as every command that loads a model
    ask.add_argument("-v", "--verbose", action="store_true", help="also print the skill the question tests")
    ask.set_defaults(handler=_world_ask)

    train = world_commands.add_parser(
        "train", help="train the model zoo from scratch",
        description="Train the zoo's models from scratch, reproducibly, from their recipes "
        "(auditdm.world.zoo.recipes). Override any recipe field with --set.",
    )  # fmt: skip
    train.add_argument("-o", "--out", type=Path, default=Path("auditdm-zoo"), help="folder to write one model "
                       "folder per recipe into (default: %(default)s)")  # fmt: skip
    train.add_argument("--only", type=comma_list, metavar="NAME,...", help="train only these recipes, "
                       "comma-separated")  # fmt: skip
    train.add_argument("--set", type=comma_list, default=[], metavar="KEY=VALUE,...",
                       help="override recipe fields, comma-separated: steps=3000, seed=5, lr=1e-3, batch_size=32, "
                       "size.image_size=96, size.text_layers=2, weights.clock=0.2")  # fmt: skip
    train.add_argument("--name", help="save the (single) trained recipe under this name, e.g. a variant")
    train.add_argument("--smoke", action="store_true", help="a few steps per model, to check the pipeline")
    train.add_argument("-j", "--jobs", type=int, default=2,
                       help="models to train at once, sharing the cores (default: %(default)s; "
                       "1 trains one after the other with every core)")  # fmt: skip
    quiet_flag(train)
    train.set_defaults(handler=_world_train)

    evaluate = world_commands.add_parser(
        "eval", help="evaluate the zoo on the held-out benchmark",
        description="Evaluate zoo models on a fixed held-out benchmark: per-skill accuracy, the "
        "reference majority vote, and the target's weak skills.",
    )  # fmt: skip
    evaluate.add_argument("--zoo", help="a folder written by `world train` (default: the shipped zoo)")
    evaluate.add_argument("--models", type=comma_list, metavar="NAME,...", help="evaluate only these zoo models, "
                          "comma-separated")  # fmt: skip
    evaluate.add_argument("--model", type=comma_list, default=[], metavar="SPEC,...", help="also evaluate these "
                          "models beside the zoo, comma-separated: hf:PATH, world:NAME, openai:MODEL@URL")  # fmt: skip
    evaluate.add_argument("--per-skill", type=int, default=200, help="questions per skill (default: %(default)s)")
    model_flags(functools.partial(field_option, evaluate, AuditConfig))  # the audit's defaults
    evaluate.add_argument("--json", action="store_true", help="print one JSON object (SPEC section 6)")
    quiet_flag(evaluate)
    evaluate.set_defaults(handler=_world_eval)
