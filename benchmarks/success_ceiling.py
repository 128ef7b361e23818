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
from dataclasses import replace

from auditdm.backends import load_synthesizer
from auditdm.panel import load_panel
from auditdm.probes import with_instruction, with_question
from auditdm.records import Picture, Probe, probe_kind
from auditdm.synth import Synthesizer
from auditdm.verify import check, is_genuine
from auditdm.world.domain import WORLD
from auditdm.world.edit import apply_edit
from auditdm.world.oracle import SKILLS
from auditdm.world.sampling import describe, sample_edit
from auditdm.world.scene import Scene
from auditdm.world.skills import ask

HELD_OUT_SEED = 7  # benchmarks/grpo.py's images
DRAWS_PER_SKILL = 4


def questions_about(picture: Picture, rng: random.Random) -> list[str]:
    """Distinct grammar questions of every skill the image allows."""
    assert picture.scene is not None
    found = (ask(rng, picture.scene, skill) for skill in SKILLS for _ in range(DRAWS_PER_SKILL))
    return sorted({asked[0].text() for asked in found if asked is not None})


def altered(source: Probe, count: int, rng: random.Random, synthesizer: Synthesizer) -> list[Probe]:
    """Up to ``count`` (Q, I*) probes that ask ``source``'s question: half on images edited by
    a sampled command, half on images regenerated from the caption of a sampled alteration
    (those the synthesizer cannot draw are left out)."""
    assert source.picture is not None and isinstance(source.picture.scene, Scene)
    scene = source.picture.scene
    probes = []
    for k in range(count):
        edit = sample_edit(rng, scene)
        if edit is None:
            continue
        if k % 2:
            planned, text = replace(source, synthesis="edit", seed=k), edit.text()
        else:
            planned, text = replace(source, synthesis="caption", seed=k), describe(apply_edit(scene, edit, rng)).text()
        made = with_instruction(planned, text, synthesizer)
        if made.error is None:
            probes.append(made)
    return probes


def main() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300, help="held-out images (default: %(default)s)")
    parser.add_argument("--candidates", type=int, default=40, help="altered images per image for (Q, I*) "
                        "(default: %(default)s)")  # fmt: skip
    args = parser.parse_args()
    sources = WORLD.images(args.images, HELD_OUT_SEED)
    synthesizer = load_synthesizer("world")
    probes: list[Probe] = []
    for i, source in enumerate(sources):
        rng = random.Random(f"ceiling:{i}")
        asked = Probe(0, i, "question", None, 0, picture=source.picture)
        probes += [with_question(asked, question) for question in questions_about(source.picture, rng)]
        original = Probe(0, i, "image", None, 0, picture=source.picture, question=source.question)
        probes += altered(original, args.candidates, rng, synthesizer)
    probes = [replace(probe, index=k) for k, probe in enumerate(probes)]
    probes, answers = load_panel("world:target", (), "exact", None).answer(probes)
    failing: dict[str, set[int]] = defaultdict(set)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for probe, answer in zip(probes, answers):
        assert probe.picture is not None and answer is not None
        kind = probe_kind(probe.pairing, probe.synthesis)
        verdict = check(probe.question or "", probe.picture)
        genuine = answer.score == 1 and is_genuine(answer.consensus, answer.target, verdict)
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
