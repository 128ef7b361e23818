"""diffusers pipelines as the generator G and the editor E, the paper's FLUX.1-dev and
FLUX.1-Kontext-dev: ``--generator diffusers:ID_OR_PATH`` takes any text-to-image pipeline
(FLUX.1-dev, SD3, SDXL, ...), ``--editor diffusers:ID_OR_PATH`` any pipeline that takes an
image and a prompt (FLUX.1-Kontext-dev, InstructPix2Pix, image-to-image).

The pipeline's class (from its ``model_index.json``) is checked against its role before any
weights load. Every image is drawn from a CPU ``torch.Generator`` seeded with the probe's
seed, the device-independent way diffusers recommends, so a resumed run draws the same
images. A failure on one probe (out of GPU memory, anything the pipeline raises) fails
that probe only. The pictures carry no scene: the oracle cannot check probes about them.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

from PIL import Image

from auditdm.errors import SynthesisError, UserError
from auditdm.records import Picture
from auditdm.synth import Role, SynthesisOptions

LOG = logging.getLogger(__name__)
PAIRS = ("a text-to-image pipeline (FLUX.1-dev, SD3, SDXL) as --generator, an editing one (FLUX.1-Kontext-dev, "
         "InstructPix2Pix) as --editor")  # fmt: skip


def check(name: str, role: Role) -> None:
    """Fail at once on a name that is no diffusers pipeline, or one that cannot play ``role``."""
    _pipeline_class(name, role)


def load(name: str, role: Role, options: SynthesisOptions) -> DiffusionGenerator | DiffusionEditor:
    """The pipeline ``name`` (a folder or a hub id) as G or E, placed as ``options`` say."""
    import torch
    from diffusers.utils import logging as diffusers_logging

    cls, source = _pipeline_class(name, role)
    device, dtype = _placement(options)
    diffusers_logging.disable_progress_bar()  # its loading bar, which HF_HUB_DISABLE_PROGRESS_BARS leaves on
    try:
        pipeline = cls.from_pretrained(source, torch_dtype=dtype, local_files_only=isinstance(source, Path))
    except (OSError, ValueError, TypeError, KeyError, ImportError) as error:
        raise UserError(f"--{role} diffusers:{name}: cannot load {cls.__name__} ({_first_line(error)})") from None
    except torch.cuda.OutOfMemoryError:
        raise UserError(f"--{role} diffusers:{name}: does not fit in the memory of {device} (try --cpu-offload, "
                        "or --synthesis-dtype bfloat16)") from None  # fmt: skip
    if options.cpu_offload:
        pipeline.enable_model_cpu_offload(device=device)
    else:
        pipeline.to(device)
    pipeline.set_progress_bar_config(disable=True)
    made = DiffusionGenerator if role == "generator" else DiffusionEditor
    return made(f"diffusers:{name}", pipeline, options)


class _Pipeline:
    """A loaded pipeline and the settings of its calls."""

    def __init__(self, name: str, pipeline: Any, options: SynthesisOptions) -> None:
        self.name, self.pipeline = name, pipeline
        given = (("num_inference_steps", options.steps), ("guidance_scale", options.guidance))
        self.settings = {key: value for key, value in given if value is not None}
        self.reader = _reader(pipeline)

    def draw(self, text: str, seed: int, **inputs: Any) -> Picture:
        """The pipeline's image for ``text`` (and ``inputs``), its noise drawn from ``seed``."""
        import torch
        from diffusers.utils import logging as diffusers_logging

        reader = self.reader
        if reader is not None and len(reader(text, verbose=False).input_ids) > reader.model_max_length:
            LOG.warning("%s reads only the first %d tokens of %r: the rest is cut off", self.name,
                        reader.model_max_length, text)  # fmt: skip
        # Its own per-call notes repeat, for every long prompt, the truncation warned of above.
        level = diffusers_logging.get_verbosity()
        diffusers_logging.set_verbosity_error()
        try:
            output = self.pipeline(prompt=text, generator=torch.Generator("cpu").manual_seed(seed), output_type="pil",
                                   **self.settings, **inputs)  # fmt: skip
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()  # so that the next probe has the memory this one was refused
            raise SynthesisError(f"{self.name} ran out of GPU memory (try --cpu-offload, or --synthesis-dtype "
                                 "bfloat16)") from None  # fmt: skip
        except Exception as error:  # whatever one prompt makes the pipeline raise fails that probe only
            raise SynthesisError(f"{self.name} failed: {type(error).__name__}: {_first_line(error)}") from None
        finally:
            diffusers_logging.set_verbosity(level)
        image: Image.Image = output.images[0]
        return Picture(image.convert("RGB"))


class DiffusionGenerator(_Pipeline):
    """G: a text-to-image pipeline."""

    def generate(self, caption: str, seed: int) -> Picture:
        return self.draw(caption, seed)


class DiffusionEditor(_Pipeline):
    """E: a pipeline that edits an image by a text command."""

    def edit(self, picture: Picture, command: str, seed: int) -> Picture:
        return self.draw(command, seed, image=picture.image)


def _pipeline_class(name: str, role: Role) -> tuple[Any, Path | str]:
    """The pipeline class that ``name``'s ``model_index.json`` names, checked against the
    role (an editor's call takes an image, a generator's does not), and where it lies."""
    spec = f"--{role} diffusers:{name}"
    if not name:
        raise UserError(f"--{role} diffusers: name the pipeline, diffusers:FOLDER or diffusers:ORG/NAME")
    try:
        import diffusers
    except ImportError:
        raise UserError(f"{spec} needs diffusers: pip install auditdm[diffusers]") from None
    source = _resolve(name, spec)
    try:
        config = diffusers.DiffusionPipeline.load_config(source, local_files_only=isinstance(source, Path))
    except (OSError, ValueError) as error:
        raise UserError(f"{spec}: no diffusers pipeline there ({_first_line(error)})") from None
    class_name = str(config.get("_class_name"))
    cls = getattr(diffusers, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, diffusers.DiffusionPipeline)):
        raise UserError(f"{spec}: unknown pipeline class {class_name!r} (not in diffusers {diffusers.__version__})")
    takes = inspect.signature(cls.__call__).parameters
    if "prompt" not in takes:
        raise UserError(f"{spec}: {class_name} takes no text prompt; give {PAIRS}")
    if role == "generator" and "image" in takes:
        raise UserError(f"{spec}: {class_name} edits images (its call takes an image), it cannot generate from "
                        f"a caption; give {PAIRS}")  # fmt: skip
    if role == "editor" and "image" not in takes:
        raise UserError(f"{spec}: {class_name} is text-to-image (its call takes no image), it cannot edit; "
                        f"give {PAIRS}")  # fmt: skip
    return cls, source


def _resolve(name: str, spec: str) -> Path | str:
    """A local folder, or a hub id (``org/name``: neither absolute nor relative-looking)."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        return folder
    if name.startswith(("/", ".", "~")) or name.count("/") != 1:
        raise UserError(f"{spec}: no such folder (and not a hub id ORG/NAME)")
    return name


def _placement(options: SynthesisOptions) -> tuple[Any, Any]:
    """The options' device and dtype as torch objects, or one clear error for either."""
    import torch

    try:
        device = torch.device(options.device)
    except (RuntimeError, TypeError):
        raise UserError(f"--synthesis-device {options.device!r}: not a device (cpu, cuda, cuda:0, mps, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--synthesis-device {options.device}: CUDA is not available here")
    if options.cpu_offload and device.type == "cpu":
        raise UserError("--cpu-offload moves a pipeline's models to a GPU one at a time: give a GPU "
                        "--synthesis-device (or --device)")  # fmt: skip
    if options.dtype is None:
        return device, None
    dtype = getattr(torch, options.dtype, None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise UserError(f"--synthesis-dtype {options.dtype!r}: not a floating-point torch dtype (float32, "
                        "bfloat16, float16)")  # fmt: skip
    return device, dtype


def _reader(pipeline: Any) -> Any | None:
    """The pipeline's tokenizer that reads the most of a prompt (FLUX: T5's 512 tokens, not
    CLIP's 77); None when it has none with a limit."""
    tokenizers = (getattr(pipeline, name, None) for name in ("tokenizer", "tokenizer_2", "tokenizer_3"))
    limited = [t for t in tokenizers if t is not None and 0 < t.model_max_length < 1_000_000]
    return max(limited, key=lambda t: t.model_max_length, default=None)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
