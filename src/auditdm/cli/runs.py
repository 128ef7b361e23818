"""``auditdm audit | compare | findings | report | export``: audits and their run directories."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import textwrap
import time
from pathlib import Path
from typing import Any

from auditdm.audit import AuditConfig
from auditdm.cli import (comma_list, config_from, default, executor_flags, field_option, model_flags, quiet_flag,
                         synthesis_flags)  # fmt: skip
from auditdm.errors import UserError
from auditdm.export import FORMATS
from auditdm.prompts import PROMPT_SETS
from auditdm.qa_data import ANSWER_COLUMNS, IMAGE_COLUMNS, QUESTION_COLUMNS
from auditdm.records import PAIRINGS, SYNTHESES


def _stamp(kind: str) -> Path:
    return Path("runs") / time.strftime(f"{kind}-%Y%m%d-%H%M%S")


FLAGS = {"syntheses": "--synthesis"}  # fields whose flag is not their name


def _config(args: argparse.Namespace, **fixed: Any) -> AuditConfig:
    return config_from(AuditConfig, args, **fixed)


def _audit(args: argparse.Namespace) -> int:
    from auditdm.audit import resume_audit, start_audit
    from auditdm.summary import format_summary

    progress = not (args.json or args.quiet)
    if args.resume:
        asked, defaults = _config(args), AuditConfig()
        given = [f.name for f in dataclasses.fields(AuditConfig) if getattr(asked, f.name) != getattr(defaults, f.name)]
        flags = [FLAGS.get(name, "--" + name.replace("_", "-")) for name in given] + (["--out"] if args.out else [])
        if flags:
            raise UserError(f"--resume {args.resume} continues the run with its own settings: drop {', '.join(flags)}")
        summary = resume_audit(args.resume, progress=progress)
    else:
        summary = start_audit(_config(args), args.out or _stamp("audit"), progress=progress)
    print(json.dumps(summary.to_dict(), indent=2) if args.json else format_summary(summary))
    if not args.json:
        print(f"report: {Path(summary.run_dir) / 'report.html'}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from auditdm.compare import compare_models, format_comparison

    if args.model_a == args.model_b:
        raise UserError(f"compare needs two different models (got {args.model_a} twice)")
    comparison = compare_models(args.model_a, args.model_b, _config(args, target=args.model_a),
                                args.out or _stamp("compare"),
                                progress=not (args.json or args.quiet))  # fmt: skip
    print(json.dumps(comparison, indent=2) if args.json else format_comparison(comparison))
    return 0


def _findings(args: argparse.Namespace) -> int:
    from auditdm.audit import conclude
    from auditdm.store import RunStore
    from auditdm.summary import format_summary

    summary = conclude(RunStore.open(args.run_dir))
    print(json.dumps(summary.to_dict()["categories"], indent=2) if args.json else format_summary(summary))
    return 0


def _report(args: argparse.Namespace) -> int:
    from auditdm.rectify import CONFIG, RESULT
    from auditdm.report import write_report
    from auditdm.store import RunStore
    from auditdm.summary import summarize

    if (args.run_dir / CONFIG).is_file():  # a rectification: its report comes from rectification.json
        from auditdm.report.rectification import write_rectification_report

        if not (args.run_dir / RESULT).is_file():
            raise UserError(f"{args.run_dir}: the rectification has not finished an iteration yet (resume it)")
        result = json.loads((args.run_dir / RESULT).read_text())
        print(f"wrote {write_rectification_report(args.run_dir, result)}")
        return 0
    store = RunStore.open(args.run_dir)
    print(f"wrote {write_report(store, summarize(store))}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from auditdm.export import export_run

    if args.quiet:  # the datasets library's bars (hf-dataset), which it reads this switch for when imported
        os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    print(f"wrote {export_run(args.run_dir, args.format, args.out)}")
    return 0


def _probe_options(parser: argparse.ArgumentParser) -> None:
    """What decides the probes: the auditor, the images, how many, how answers are judged.
    Every default is ``AuditConfig``'s."""

    option = functools.partial(field_option, parser, AuditConfig)
    option("--auditor", "the auditor: world:NAME, hf:PATH, openai:MODEL@URL or a folder; world:baseline is the "
           "untrained baseline (default: %(default)s, GRPO-trained)")  # fmt: skip
    option("--prompts", "the auditor's prompt set (default: the one the auditor was trained for; auditdm for "
           "hf: auditors)", choices=PROMPT_SETS)  # fmt: skip
    option("--pairings", f"{', '.join(PAIRINGS)}: question = (Q*, I), image = (Q, I*), both = (Q*, I*) "
           "(default: every one the images allow)", type=comma_list, metavar="P,...")  # fmt: skip
    option("--synthesis", f"how new images are made: {', '.join(SYNTHESES)} (generator G, editor E) (default: both)",
           type=comma_list, metavar="S,...", field="syntheses")  # fmt: skip
    option("--images", "a folder of images to audit on (default: world images)")
    option("--dataset", "images with their questions, and answers if it has them, to audit on: a Hugging Face "
           "datasets folder, a .parquet file, or .json/.jsonl rows (VQAv2-style); (Q, I*) probes ask each "
           "image's own question, and the answers measure the models on the original images", metavar="PATH")  # fmt: skip
    for what, usual in (("image", IMAGE_COLUMNS), ("question", QUESTION_COLUMNS), ("answer", ANSWER_COLUMNS)):
        option(f"--{what}-column", f"the --dataset column of the {what}s (default: the first of "
               f"{', '.join(usual)} it has)", metavar="NAME")  # fmt: skip
    option("--limit", "at most N images of --images (the first in name order; the others are not read) or of "
           "--dataset (its first N rows) (default: all)", type=int, metavar="N")  # fmt: skip
    option("--image-count", "world images to use (default: %(default)s)", type=int)
    option("--probes", "probes to make (default: %(default)s)", type=int)
    option("--judge", "answer judge: exact, embedding, embedding:THRESHOLD, or an LLM judge openai:MODEL@BASE_URL "
           "(default: %(default)s)")
    option("--temperature", "the auditor's sampling temperature (default: %(default)s)", type=float)
    option("--explore", "this share of the auditor's texts start with one of the forms (first two words) its "
           "training saw the references answer together, drawn at random; it writes the rest. A trained "
           "auditor writes the one or two forms that paid best; this makes it ask in the others, which pays "
           "only if it can still finish them (default: %(default)s)", type=float, metavar="SHARE")  # fmt: skip
    option("--seed", "fixes the images and every sample (default: %(default)s)", type=int)
    option("--commit-every", "probes made and stored together: a stopped audit loses at most these, and "
           "--resume redoes them (default: %(default)s)", type=int, metavar="N")  # fmt: skip
    option("--weak-skill-questions", "held-out questions per skill for finding the target's weak skills, world "
           "images only; 0 skips it (default: %(default)s)", type=int)  # fmt: skip
    option("--device", "where the models run: cpu, cuda:0, ... (default: %(default)s)")
    option("--dtype", "model dtype, e.g. bfloat16 (default: as saved)")
    option("--concurrency", "requests in flight at once to each openai: model (default: %(default)s)", type=int,
           metavar="N")
    executor_flags(option)
    model_flags(option)
    synthesis_flags(option)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    quiet_flag(parser)


def add_run_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = commands.add_parser(
        "audit", help="find where a target model fails (the main job)",
        description="Audit a target model: an auditor writes probes (new questions, and new images from a "
        "caption or an edit command), the target and the reference models answer, and every probe where the "
        "target disagrees with the references' consensus is flagged; the failures are grouped into named "
        "categories. Writes a run directory (SQLite store, images, summary.json, report.html); on world images "
        "the oracle verifies what was flagged. With no options: world:target against the world references, "
        "with the GRPO-trained world auditor, on 40 world images.",
    )  # fmt: skip
    audit.add_argument("--target", default=default(AuditConfig, "target"), help="model to audit: world:NAME, "
                       "hf:PATH or openai:MODEL@BASE_URL (default: %(default)s)")  # fmt: skip
    audit.add_argument("--references", type=comma_list, metavar="A,B,...", default=default(AuditConfig, "references"),
                       help="reference models, comma-separated (default: every world reference); one reference = "
                       "model-comparison mode")  # fmt: skip
    audit.add_argument("--quorum", type=int, help="references that must agree for a consensus (default: all)")
    audit.add_argument("--min-confidence", type=float, metavar="P", help="a reference whose probability of its "
                       "own answer is below P abstains (default: none do)")  # fmt: skip
    _probe_options(audit)
    audit.add_argument("-o", "--out", type=Path, help="run directory to write (default: runs/audit-DATE-TIME)")
    audit.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a stopped audit (other options "
                       "are taken from the run)")  # fmt: skip
    audit.set_defaults(handler=_audit)

    compare = commands.add_parser(
        "compare", help="where is each of two models worse than the other?",
        description="Audit MODEL_A against MODEL_B and MODEL_B against MODEL_A (model-comparison mode: the "
        "other model is the only reference), group the disagreements into categories, and say per category "
        "which model is wrong (on world images, by the oracle). Writes both runs and comparison.json.",
    )  # fmt: skip
    compare.add_argument("model_a", help="e.g. world:target")
    compare.add_argument("model_b", help="e.g. world:target-large")
    _probe_options(compare)
    compare.add_argument("-o", "--out", type=Path, help="folder for both runs (default: runs/compare-DATE-TIME)")
    compare.set_defaults(handler=_compare)

    findings = commands.add_parser(
        "findings", help="group a run's failures into named weakness categories",
        description="Cluster the flagged probes of a run into weakness categories (sentence embeddings of the "
        "questions and expected answers; never the oracle), name them, and store them in the run; rewrites "
        "summary.json and report.html. An audit does this by itself at its end.",
    )  # fmt: skip
    findings.add_argument("run_dir", type=Path)
    findings.add_argument("--json", action="store_true", help="print the categories as JSON")
    findings.set_defaults(handler=_findings)

    report = commands.add_parser("report", help="rebuild a run's HTML report from its store",
                                 description="Write RUN_DIR/report.html from the run's store alone (a "
                                 "rectification's from its rectification.json).")  # fmt: skip
    report.add_argument("run_dir", type=Path)
    report.set_defaults(handler=_report)

    formats = "\n".join(textwrap.fill(text, 100, initial_indent=f"  {name:<11} ", subsequent_indent=" " * 14)
                         for name, text in FORMATS.items())  # fmt: skip
    export = commands.add_parser(
        "export", help="export a run: its probes as JSONL, Parquet or a dataset, or training data",
        description=textwrap.fill("Export a run: every probe of an audit, one row each, or chat training data "
                                  "(an audit's flagged probes, a rectification's training pairs). Written inside the "
                                  "run (probes.jsonl, probes.parquet, probes.dataset, sft.dataset; a rectification's "
                                  "pairs.dataset) unless -o names a file (jsonl, parquet) or a folder (hf-dataset, "
                                  "sft); folders that do not exist are made.", 100) + "\n\nformats:\n" + formats,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    export.add_argument("run_dir", type=Path)
    export.add_argument("--format", choices=FORMATS, default="jsonl", help="what to write (default: %(default)s)")
    export.add_argument("-o", "--out", type=Path, help="file or folder to write (default: in the run directory, "
                        "probes.jsonl, probes.parquet, probes.dataset, sft.dataset or pairs.dataset)")  # fmt: skip
    quiet_flag(export)
    export.set_defaults(handler=_export)
