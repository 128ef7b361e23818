"""The ``auditdm`` command line: ``runs.py`` (audit, compare, findings, report, export),
``train.py`` (train-auditor), ``rectify.py`` (rectify), ``serve.py`` (serve), and the
backends' own groups (``auditdm world``, in ``world/cli.py``).

Every subcommand has ``--help``. Errors that come from the user's input print one line
naming the input and exit with status 2; ``--debug`` shows the traceback instead.

A flag means one thing in every command that has it: ``-o/--out`` is what a command writes,
``--batch-size`` the prompts per forward pass of a model, ``--limit`` how much of the user's
data is read, ``-q/--quiet`` no progress bars; every list is comma-separated.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from auditdm.errors import UserError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the whole command line."""
    from auditdm.backends import add_commands
    from auditdm.cli.rectify import add_rectify
    from auditdm.cli.runs import add_run_commands
    from auditdm.cli.serve import add_serve
    from auditdm.cli.train import add_train_auditor

    parser = argparse.ArgumentParser(
        prog="auditdm",
        description="Audit multimodal models: find where a model fails, explain the failures "
        "as weakness categories, and make the data that fixes them (AuditDM).",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_run_commands(commands)
    add_train_auditor(commands)
    add_rectify(commands)
    add_serve(commands)
    add_commands(commands)
    return parser


C = TypeVar("C")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("auditdm")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def default(config: type[Any], name: str) -> Any:
    """The default of a config dataclass field: defaults live there once, the flags read them."""
    field = next(f for f in dataclasses.fields(config) if f.name == name)
    return field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default


def field_option(parser: argparse.ArgumentParser, config: type[Any], flag: str, help: str, **kwargs: Any) -> None:
    """A flag for a field of a config dataclass (named as the flag, or by ``field=``), whose
    default is the field's."""
    name = kwargs.pop("field", flag.lstrip("-").replace("-", "_"))
    parser.add_argument(flag, dest=name, default=default(config, name), help=help, **kwargs)


def config_from(config: type[C], args: argparse.Namespace, **fixed: Any) -> C:
    """A config dataclass from the parsed flags named as its fields (lists become tuples)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config)  # type: ignore[arg-type]
              if f.name not in fixed and hasattr(args, f.name)}  # fmt: skip
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return config(**values, **fixed)


def optional_float(text: str) -> float | None:
    """A number, or ``none`` for a setting turned off."""
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or none, got {text!r}") from None


def comma_list(text: str) -> list[str]:
    """A comma-separated flag value as a list."""
    return [part.strip() for part in text.split(",") if part.strip()]


def executor_flags(option: Callable[..., None]) -> None:
    """Where the models run: the same for ``audit``, ``compare`` and ``rectify``."""
    from auditdm.audit import EXECUTORS

    option("--executor", "where the models run: local (this process) or ray (Ray actors; pip install "
           "'auditdm[ray]') (default: %(default)s)", choices=EXECUTORS)  # fmt: skip
    option("--ray-address", "with --executor ray: auto or HOST:PORT, an existing Ray cluster (default: a local "
           "cluster for the run)", metavar="ADDRESS")  # fmt: skip
    option("--replicas", "with --executor ray: actors per model (default: %(default)s)", type=int, metavar="N")


def model_flags(option: Callable[..., None]) -> None:
    """The flags that decide how the models load and answer: the same for ``audit``,
    ``compare``, ``train-auditor``, ``rectify`` and ``world eval`` (``option`` adds the flag
    of a config field)."""
    option("--batch-size", "prompts per forward pass of a model; an openai: model takes --concurrency instead "
           "(default: %(default)s)", type=int, metavar="N")  # fmt: skip
    option("--max-new-tokens", "the length of the answers of the target and the references, in tokens (default: "
           "each backend's own: 8 for hf: and world:, 16 for openai:)", type=int, metavar="N")  # fmt: skip
    option("--revision", "the hub revision (branch, tag or commit) that every hf: hub id loads at (default: its "
           "default branch)", metavar="REV")  # fmt: skip
    option("--trust-remote-code", "let hf: models run the code their hub repository holds, for models that "
           "transformers does not know (off: only transformers' own code runs)", action="store_true")  # fmt: skip


def quiet_flag(parser: argparse.ArgumentParser) -> None:
    """``-q/--quiet``, the same on every long command."""
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars: print only the result")


def synthesis_flags(option: Callable[..., None]) -> None:
    """The flags that choose the generator G and the editor E, and how they run: the same for
    ``audit``, ``compare`` and ``train-auditor`` (``option`` adds the flag of a config field)."""
    option("--generator", "makes new images from the auditor's captions: world (the world's renderer) or "
           "diffusers:ID_OR_PATH, a text-to-image pipeline such as black-forest-labs/FLUX.1-dev (default: "
           "%(default)s)", metavar="SPEC")  # fmt: skip
    option("--editor", "edits images by the auditor's commands: world (world images only) or diffusers:ID_OR_PATH, "
           "an editing pipeline such as black-forest-labs/FLUX.1-Kontext-dev (default: %(default)s)",
           metavar="SPEC")  # fmt: skip
    option("--synthesis-device", "where diffusers pipelines run: one device for both, or the generator's and the "
           "editor's, comma-separated (default: --device)", type=comma_list, metavar="D[,D]")  # fmt: skip
    option("--synthesis-dtype", "diffusers pipelines' dtype, e.g. bfloat16 (default: --dtype, else float32)",
           metavar="DTYPE")
    option("--synthesis-steps", "denoising steps per image (default: each pipeline's own)", type=int, metavar="N")
    option("--guidance", "guidance scale (default: each pipeline's own)", type=float, metavar="SCALE")
    option("--cpu-offload", "keep only the running model of a pipeline on the GPU (diffusers' model CPU offload, "
           "for a GPU too small for the whole pipeline)", action="store_true")  # fmt: skip


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


