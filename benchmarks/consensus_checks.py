"""Print how well two label-free checks tell a right consensus from an error the references share.

    python benchmarks/consensus_checks.py --per-skill 400

A shared error pays the auditor as well as a genuine failure (the auditor-transfer issue:
an auditor trained against a target that counts better than the references learnt to find
where they miscount together). Two checks need no labels:
- the confidence gate (`--min-confidence P`): every reference must give its own answer a
  probability of at least P;
- a known-effect edit: edit the image so that the answer must change in a known way (one
  more of what is counted: the count rises by one; add what an existence question asks about:
  "no" becomes "yes"; remove the one thing it names: "yes" becomes "no"), and ask again.
On held-out world questions of counting and hallucination (the skills with such edits), where
the references agree, this prints how many right consensus answers and how many shared errors
(by the oracle) each check keeps.
"""

from __future__ import annotations

import argparse
import random
import zlib
from collections import Counter

from auditdm.backends import default_references, load_synthesizer
from auditdm.errors import SynthesisError
from auditdm.judge import load_judge, normalize_answer, score_many
from auditdm.models import load_model
from auditdm.records import Picture
from auditdm.world.grammar import Edit, ItemSpec, Ref
from auditdm.world.parse import parse_question
from auditdm.world.scene import CELLS, SHAPES
from auditdm.world.skills import sample_example

GATES = (0.5, 0.6, 0.7, 0.8, 0.9)


def known_effects(question: str, answer: str) -> list[tuple[str, str]]:
    """Edit commands, each with the answer the edited image must get, in the order to try them."""
    parsed = parse_question(question)
    ref = parsed.subject or Ref("object")
    noun = SHAPES[zlib.crc32(question.encode()) % len(SHAPES)] if ref.noun == "object" else ref.noun
    added = [Edit("add", new=ItemSpec(noun, ref.size, ref.color, ref.texture), cell=c).text() for c in CELLS]
    if parsed.form == "count" and answer.isdigit():
        return [(command, str(int(answer) + 1)) for command in added]
    if parsed.form == "exists":
        return [(command, "yes") for command in added] if answer == "no" else [(Edit("remove", target=ref).text(), "no")]
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-skill", type=int, default=400)
    args = parser.parse_args()
    references = [load_model(spec, progress=False) for spec in default_references("world:target")]
    judge = load_judge("exact")
    synthesizer = load_synthesizer("world")
    rng = random.Random("consensus-checks")
    for skill in ("counting", "hallucination"):
        examples = [sample_example(rng, skill) for _ in range(args.per_skill)]
        images = [e.image() for e in examples]
        questions = [e.question.text() for e in examples]
        rated = [r.confidences(images, questions) for r in references]
        verdicts = score_many(["" for _ in examples], [tuple(a for a, _ in per) for per in zip(*rated)], judge)
        right = [normalize_answer(e.answer) == v.consensus for e, v in zip(examples, verdicts)]
        agreed = [i for i, v in enumerate(verdicts) if v.consensus is not None]
        print(f"{skill}: {len(examples)} questions, the references agree on {len(agreed)}: "
              f"{sum(right[i] for i in agreed)} right, {sum(not right[i] for i in agreed)} shared errors")
        for gate in GATES:
            kept = Counter(right[i] for i in agreed if min(p for _, p in (r[i] for r in rated)) >= gate)
            print(f"  gate {gate}: keeps {kept[True]} right, {kept[False]} shared errors")
        edited, asked, expected, truth = [], [], [], []
        for i in agreed:
            for command, after in known_effects(questions[i], verdicts[i].consensus or ""):
                try:
                    picture = synthesizer.edit(Picture(images[i], examples[i].scene), command, 0)
                except SynthesisError:
                    continue  # that cell is taken, or the thing to remove is not there alone: the next
                edited.append(picture.image)
                asked.append(questions[i])
                expected.append(after)
                truth.append(right[i])
                break
        answers = list(zip(*[r.generate(edited, asked) for r in references]))
        print(f"  known-effect edit applies to {len(edited)} of {len(agreed)}")
        for quorum in range(len(references), 0, -1):
            moved = [v.consensus is not None and v.score == 0 for v in score_many(expected, answers, judge, quorum)]
            kept = Counter(t for t, m in zip(truth, moved) if m)
            print(f"  known-effect edit, {quorum} of {len(references)} references answer as it implies: "
                  f"keeps {kept[True]} of {sum(truth)} right, {kept[False]} of {len(truth) - sum(truth)} shared errors")


if __name__ == "__main__":
    main()
