"""Print what one probe of an audit of photographs costs, stage by stage, and what a
20,000-probe audit (the paper's 20K VQAv2 pairs) would take on this machine.

    python benchmarks/photo_audit.py                  # 60 probes, 28 denoising steps (FLUX's default)
    python benchmarks/photo_audit.py --probes 24 --steps 4

The photographs are scikit-image's (astronaut, coffee, chelsea, rocket, camera, motorcycle),
downscaled to --side pixels, in a VQA-style dataset with a question each, so every kind of
probe is made: (Q*, I), (Q, I*) and (Q*, I*), by caption and by edit. G and E are the tests'
tiny random diffusers pipelines (Stable Diffusion drawing 32 px, InstructPix2Pix editing at
the photograph's size); the auditor, target and references are the world's models. The
audit's own calls are made in its order (plan, write, draw, answer and judge, store), each
timed; nothing is left out but the oracle, which has nothing to check on photographs.

Left out: model loading (once per run), and the answers to the dataset's own questions on
the original images (once per image, printed apart). The 20,000-probe figure assumes the
measured mix of kinds, one process on this machine, and a per-probe cost that does not grow
with the run (the store commits a batch at a time). Real G and E (FLUX.1-dev, Kontext) cost
far more per image: the last line says how to add them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from auditdm.auditor import load_auditor
from auditdm.backends import load_synthesizer
from auditdm.panel import load_panel
from auditdm.probes import make_probes, plan_probe
from auditdm.qa_data import read_questions
from auditdm.records import PAIRINGS, SYNTHESES, Picture, Probe, Task, probe_kind
from auditdm.store import RunStore
from auditdm.synth import SynthesisOptions, Synthesizer

if TYPE_CHECKING:
    from PIL import Image

    from auditdm.judge import Judge
    from auditdm.probes import Writer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from tiny_pipelines import build_pipelines  # noqa: E402  (the tests' builders: one definition of the tiny pipelines)

PHOTOS = {
    "astronaut.png": "what is the person holding ?",
    "coffee.png": "what color is the saucer ?",
    "chelsea.png": "what animal is this ?",
    "rocket.jpg": "how many rockets are there ?",
    "camera.png": "what is the man looking through ?",
    "motorcycle_left.png": "what vehicle is this ?",
}
TARGET_PROBES = 20_000
T = TypeVar("T")


class Clock:
    """Seconds per stage."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)

    def timed(self, stage: str, call: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return call()
        finally:
            self.seconds[stage] += time.perf_counter() - started


@dataclasses.dataclass(frozen=True)
class TimedWriter:
    writer: Writer
    clock: Clock

    def write(self, images: Sequence[Image.Image], task: Task, seed: int) -> list[str]:
        return self.clock.timed("auditor", lambda: self.writer.write(images, task, seed))


@dataclasses.dataclass(frozen=True)
class TimedSynthesizer:
    synthesizer: Synthesizer
    clock: Clock

    @property
    def name(self) -> str:
        return self.synthesizer.name

    def generate(self, caption: str, seed: int) -> Picture:
        return self.clock.timed("generation (G)", lambda: self.synthesizer.generate(caption, seed))

    def edit(self, picture: Picture, command: str, seed: int) -> Picture:
        return self.clock.timed("editing (E)", lambda: self.synthesizer.edit(picture, command, seed))


class TimedJudge:
    def __init__(self, judge: Judge, clock: Clock) -> None:
        self.judge, self.clock, self.name = judge, clock, judge.name

    def same(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        return self.clock.timed("judging", lambda: self.judge.same(pairs))


def dataset(folder: Path, side: int) -> Path:
    """scikit-image's photographs, downscaled to ``side`` pixels, as a JSONL with a question each."""
    import skimage
    from PIL import Image

    rows = []
    for name, question in PHOTOS.items():
        with Image.open(Path(skimage.__file__).parent / "data" / name) as image:
            image.thumbnail((side, side))
            image.save(folder / name)
        rows.append({"image": name, "question": question})
    (folder / "photos.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder / "photos.jsonl"


def main() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--steps", type=int, default=28, help="denoising steps of G and E")
    parser.add_argument("--side", type=int, default=128, help="the photographs' longest side, in pixels (the tiny "
                        "VAE only halves an image, so its attention grows with the fourth power of the side)")
    args = parser.parse_args()
    clock = Clock()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        sd, ip2p = build_pipelines(folder)
        sources = read_questions(dataset(folder, args.side))
        options = SynthesisOptions(steps=args.steps)
        synthesizer = TimedSynthesizer(load_synthesizer(f"diffusers:{sd}", f"diffusers:{ip2p}", (options, options)),
                                       clock)  # fmt: skip
        auditor = load_auditor("world:auditor")
        panel = load_panel("world:target", (), "exact", None)
        panel = dataclasses.replace(panel, judge=TimedJudge(panel.judge, clock))
        store = RunStore.create(folder / "run", {"seconds": 0.0}, sources)
        parents = store.source_addresses()
        answerers = [(panel.target.name, "target"), *((r.name, "reference") for r in panel.references)]
        kinds: Counter[str] = Counter()
        started, cpu_started = time.perf_counter(), time.process_time()
        for batch, first in enumerate(range(0, args.probes, args.batch_size)):
            indices = range(first, min(args.probes, first + args.batch_size))
            planned = [plan_probe(sources, PAIRINGS, SYNTHESES, 0, i, parents) for i in indices]
            made = make_probes(planned, TimedWriter(auditor, clock), synthesizer, 0, batch)
            probes, answers = clock.timed("answering", lambda: panel.answer(made))
            clock.timed("storing", lambda: store.commit_batch(batch, probes, answers, [None] * len(probes),
                                                              auditor.name, auditor.prompts, answerers))  # fmt: skip
            kinds.update(probe_kind(p.pairing, p.synthesis) for p in probes)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        originals = [Probe(i, i, "question", None, 0, picture=s.picture, question=s.question)
                     for i, s in enumerate(sources)]  # fmt: skip
        answered_at = time.perf_counter()  # after the loop: the models are warm, as in a long audit
        panel.answer(originals)
        per_original = (time.perf_counter() - answered_at) / len(originals)
    clock.seconds["answering"] -= clock.seconds["judging"]  # the judge runs inside the panel's answer
    report(args, clock, kinds, wall, per_original, len(sources))
    print(f"this process ran {cpu:.0f} CPU-seconds in {wall:.0f} s of wall time on {os.cpu_count()} cores (other "
          "processes on the machine slow it: the figures are upper bounds for it)")


def report(args: argparse.Namespace, clock: Clock, kinds: Counter[str], wall: float, per_original: float,
           images: int) -> None:  # fmt: skip
    probes = sum(kinds.values())
    stages = ("auditor", "generation (G)", "editing (E)", "answering", "judging", "storing")
    other = wall - sum(clock.seconds[s] for s in stages)  # planning, question checks, the loop's own work
    print(f"{probes} probes of {images} photographs ({args.side} px), G and E at {args.steps} steps, "
          f"batches of {args.batch_size}: {wall:.1f} s, {probes / wall:.3f} probes/s")
    print(f"kinds: {', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}")
    print(f"{'stage':<16}{'s/probe':>10}{'share':>8}")
    for stage in stages:
        print(f"{stage:<16}{clock.seconds[stage] / probes:>10.3f}{clock.seconds[stage] / wall:>8.1%}")
    print(f"{'other':<16}{other / probes:>10.3f}{other / wall:>8.1%}   (planning, question checks, bookkeeping)")
    print(f"answering an original image's own question (target and references): {per_original:.3f} s, once per "
          "image of a dataset with answers")
    total = TARGET_PROBES * wall / probes
    synthesis = clock.seconds["generation (G)"] + clock.seconds["editing (E)"]
    rest = TARGET_PROBES * (wall - synthesis) / probes
    captions, edits = (sum(n for k, n in kinds.items() if k.endswith(s)) / probes for s in ("+caption", "+edit"))
    print(f"\n{TARGET_PROBES:,} probes at this rate: {total / 3600:.1f} h ({total:,.0f} s), one process on this machine, "
          f"this mix of kinds; plus {TARGET_PROBES * per_original / 3600:.2f} h to answer the own questions of "
          f"{TARGET_PROBES:,} images with answers (the accuracy on the originals)")
    print(f"with a real G and E: {rest / 3600:.1f} h for the rest, plus 20,000 x ({captions:.2f} x G's + {edits:.2f} x "
          "E's seconds per image)")


if __name__ == "__main__":
    main()
