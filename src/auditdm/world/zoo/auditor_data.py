"""Training conversations for the world auditor's warm start (the untrained baseline).

The auditor learns, by supervised training, to write what the world understands: for an
image, a question drawn uniformly over the skills (p_q), a caption of the image with one
small alteration (p_c), and an edit command that applies to it (p_e). Every target is
valid by construction. It learns nothing about which probes make the target fail: that is
what GRPO adds.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from auditdm.prompts import PROMPTS
from auditdm.records import TASKS, Task
from auditdm.world.edit import apply_edit
from auditdm.world.oracle import SKILLS
from auditdm.world.parse import tokenize
from auditdm.world.render import render
from auditdm.world.sampling import describe, random_scene, sample_edit
from auditdm.world.scene import Scene
from auditdm.world.skills import ask
from auditdm.world.zoo.sft import Example

def prompt_words() -> list[str]:
    """Every word of every auditor prompt: the auditor's vocabulary beyond the lexicon."""
    return [word for prompts in PROMPTS.values() for text in prompts.values() for word in tokenize(text)]


def written(rng: random.Random, scene: Scene, task: Task) -> str | None:
    """A valid text for ``task`` about ``scene``, or None if the scene allows none."""
    if task == "question":
        for skill in rng.sample(SKILLS, len(SKILLS)):  # a uniform skill, else the next that fits
            found = ask(rng, scene, skill)
            if found is not None:
                return found[0].text()
        return None
    edit = sample_edit(rng, scene)
    if edit is None:
        return None
    if task == "edit":
        return edit.text()
    return describe(apply_edit(scene, edit, rng)).text()


def auditor_conversations(seed: int) -> Iterator[Example]:
    """Endless training examples: an image and the three tasks about it, in random order,
    each under a prompt set drawn at random (so the model follows either)."""
    rng = random.Random(f"auditor:{seed}")
    while True:
        scene = random_scene(rng, clutter=("none", "none", "light", "heavy"))
        turns = []
        for task in rng.sample(TASKS, len(TASKS)):
            text = written(rng, scene, task)
            if text is not None:
                turns.append((PROMPTS[rng.choice(list(PROMPTS))][task], text))
        if turns:
            yield render(scene), turns
