"""Print how high the search success rate can go on the held-out world images, for any auditor.

    python benchmarks/success_ceiling.py --images 300 --candidates 40

For each of the GRPO benchmark's held-out images (seed 7) it enumerates probes of two kinds
and lets the oracle say which are genuine target failures (answerable, the references'
consensus equals the truth, the target's answer does not):

- (Q*, I): grammar questions of every skill about the image (the question kind);
- (Q, I*): the image's original question Q on ``--candidates`` altered images, half edited
  by a sampled command (editor E), half regenerated from a sampled caption (generator G).

An auditor that picked, for every image, one probe among these candidates that fails would
succeed on the share of images that have one; it would need to know the target's answers
and, for (Q, I*), the question it never sees (A(I, p_c) and A(I, p_e) are not shown Q).
The audit mixes five kinds evenly: (Q*, I), (Q*, I*) by caption and by edit, and (Q, I*) by
caption and by edit. Counting both (Q*, I*) kinds as always successful, the last line is a
bound on the whole audit's success rate over these candidates.
"""

from __future__ import annotations

import argparse
import os
import random
from collections import defaultdict

from auditdm.records import Picture, Probe
from auditdm.scoring import load_scorer
from auditdm.sources import world_images
from auditdm.synth import Synthesizer, SynthesisError, load_synthesizer
from auditdm.verify import check, is_genuine
from auditdm.world.edit import apply_edit
from auditdm.world.oracle import SKILLS
from auditdm.world.sampling import describe, sample_edit
from auditdm.world.skills import ask

HELD_OUT_SEED = 7  # benchmarks/grpo.py's images
DRAWS_PER_SKILL = 4


def questions_about(picture: Picture, rng: random.Random) -> list[str]:
    """Distinct grammar questions of every skill the image allows."""
    assert picture.scene is not None
    found = (ask(rng, picture.scene, skill) for skill in SKILLS for _ in range(DRAWS_PER_SKILL))
    return sorted({asked[0].text() for asked in found if asked is not None})


def altered(picture: Picture, count: int, rng: random.Random, synthesizer: Synthesizer) -> list[tuple[str, Picture]]:
    """Up to ``count`` altered images, by kind: half edited by a sampled command, half
    regenerated from the caption of a sampled alteration."""
    assert picture.scene is not None
    pictures = []
    for k in range(count):
        edit = sample_edit(rng, picture.scene)
        if edit is None:
            continue
        try:
            if k % 2:
                pictures.append(("edit", synthesizer.edit(picture, edit.text(), k)))
            else:
                caption = describe(apply_edit(picture.scene, edit, rng)).text()
                pictures.append(("caption", synthesizer.generate(caption, k)))
        except SynthesisError:
            continue
    return pictures


def main() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300, help="held-out images (default: %(default)s)")
    parser.add_argument("--candidates", type=int, default=40, help="altered images per image for (Q, I*) "
                        "(default: %(default)s)")  # fmt: skip
    args = parser.parse_args()
    sources = world_images(args.images, HELD_OUT_SEED)
    synthesizer = load_synthesizer("world")
    probes: list[tuple[str, Probe]] = []
    for i, source in enumerate(sources):
        rng = random.Random(f"ceiling:{i}")
        for question in questions_about(source.picture, rng):
            probes.append(("question", Probe(len(probes), i, "question", None, "", 0, question=question,
                                             picture=source.picture)))  # fmt: skip
        for kind, picture in altered(source.picture, args.candidates, rng, synthesizer):
            probes.append((f"image+{kind}", Probe(len(probes), i, "image", kind, "", 0, question=source.question,
                                                  picture=picture)))  # fmt: skip
    scorer = load_scorer("world:target", (), "exact", None)
    scorer.score([probe for _, probe in probes])
    failing: dict[str, set[int]] = defaultdict(set)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for kind, probe in probes:
        assert probe.picture is not None and probe.picture.scene is not None
        verdict = check(probe.question or "", probe.picture.scene)
        genuine = probe.score == 1 and is_genuine({
            "oracle_status": verdict.status, "truth": verdict.truth, "consensus": probe.consensus,
            "target_answer": probe.target_answer})  # fmt: skip
        counts[kind][0] += 1
        counts[kind][1] += genuine
        if genuine:
            failing[kind].add(probe.source)
    share = {kind: len(failing[kind]) / len(sources) for kind in counts}
    print(f"{len(sources)} held-out images (seed {HELD_OUT_SEED}), {len(probes)} candidate probes")
    for kind, (total, genuine) in counts.items():
        print(f"{kind:<14} {total:6d} candidates, {100 * genuine / total:5.1f} % genuine failures; "
              f"images with at least one: {100 * share[kind]:5.1f} %")
    bound = (share["question"] + 2 + share["image+caption"] + share["image+edit"]) / 5
    print(f"bound on the audit's search success rate (five kinds, (Q*, I*) counted as always found): "
          f"{100 * bound:.1f} %")


if __name__ == "__main__":
    main()
