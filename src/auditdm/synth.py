"""Image synthesis: the generator G (caption -> image) and editor E (image, command -> image).

The paper uses FLUX.1-dev and FLUX.1-Kontext through diffusers (``diffusion.py``); the
embedded world uses its renderer, whose images carry their scene. G and E are chosen apart
(``--generator``, ``--editor``: ``world`` or ``diffusers:ID_OR_PATH``), loaded through
``backends.load_synthesizer`` and paired into one ``Synthesizer``. Text a backend cannot
turn into an image raises ``SynthesisError``: the audit records it as a failed probe with
this reason, it never crashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from auditdm.errors import UserError
from auditdm.records import Picture

Role = Literal["generator", "editor"]


class Generator(Protocol):
    """G: makes the image a caption describes."""

    @property
    def name(self) -> str: ...

    def generate(self, caption: str, seed: int) -> Picture: ...


class Editor(Protocol):
    """E: makes the image an edit command turns a picture into."""

    @property
    def name(self) -> str: ...

    def edit(self, picture: Picture, command: str, seed: int) -> Picture: ...


class Synthesizer(Protocol):
    """Makes new images from a caption, or from an image and an edit command."""

    @property
    def name(self) -> str: ...

    def generate(self, caption: str, seed: int) -> Picture:
        """G: the image a caption describes."""
        ...

    def edit(self, picture: Picture, command: str, seed: int) -> Picture:
        """E: the image after an edit command."""
        ...


@dataclass(frozen=True)
class SynthesisOptions:
    """How a model-based G or E runs (the world's renderer needs none of it)."""

    device: str = "cpu"
    dtype: str | None = None  # None: the backend's default (float32 for diffusers)
    steps: int | None = None  # denoising steps; None: the pipeline's default
    guidance: float | None = None  # guidance scale; None: the pipeline's default
    cpu_offload: bool = False  # keep only the running model on the GPU (for GPUs too small for a pipeline)

    @staticmethod
    def per_role(devices: Sequence[str], device: str, dtype: str | None, steps: int | None, guidance: float | None,
                 cpu_offload: bool) -> tuple[SynthesisOptions, SynthesisOptions]:  # fmt: skip
        """The generator's and the editor's options: ``devices`` is one device for both, or
        the generator's then the editor's; none: ``device``, where the other models run."""
        if len(devices) > 2:
            raise UserError(f"--synthesis-device {','.join(devices)}: name one device for both, or two "
                            "(the generator's, then the editor's)")  # fmt: skip
        if steps is not None and steps < 1:
            raise UserError(f"--synthesis-steps {steps}: must be at least 1")
        first, second = (devices[0], devices[-1]) if devices else (device, device)
        return (SynthesisOptions(first, dtype, steps, guidance, cpu_offload),
                SynthesisOptions(second, dtype, steps, guidance, cpu_offload))  # fmt: skip


@dataclass(frozen=True)
class SynthesisPair:
    """A generator and an editor, from the same backend or from two, as one synthesizer."""

    generator: Generator
    editor: Editor

    @property
    def name(self) -> str:
        names = (self.generator.name, self.editor.name)
        return names[0] if names[0] == names[1] else "+".join(names)

    def generate(self, caption: str, seed: int) -> Picture:
        return self.generator.generate(caption, seed)

    def edit(self, picture: Picture, command: str, seed: int) -> Picture:
        return self.editor.edit(picture, command, seed)
