"""The one registry of backends: what a ``kind:name`` model string, a synthesizer name and a
domain name load.

A new backend is one module plus one line here. Modules are named as strings and imported
only when used, so a backend's heavy libraries load only for the runs that need them.

A model backend module provides ``load(name, **options)`` (a VLM, see ``models``) and
``resolve(name)`` (its weights: a local folder, or a hub id; for a remote model, its name);
optionally ``default_references()`` (the references a target of this kind is audited against
when none are named; a kind without them gets those of the domain whose recipe trained the
model, ``Domain.references``). A model's own training data, which rectification mixes in so that
it does not forget, comes from its card through that domain too (``Domain.recipe_data``).
The ``concurrency`` option (requests in flight at once) reaches only a ``load`` that names it.

A synthesizer backend module (``world``, ``diffusers:ID_OR_PATH``) provides ``check(name,
role)``, which fails at once on a name that cannot play the role (generator or editor), and
``load(name, role, options)``, which gives the generator or editor (see ``synth``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from auditdm.errors import UserError

if TYPE_CHECKING:
    from auditdm.domains import Domain
    from auditdm.records import Scene
    from auditdm.synth import Role, SynthesisOptions, Synthesizer

MODELS: dict[str, str] = {
    "world": "auditdm.world.zoo.cards",  # world:NAME, a model of the embedded world's zoo
    "hf": "auditdm.models.hf",  # hf:PATH_OR_HUB_ID, any transformers image-text-to-text model
    "openai": "auditdm.models.openai",  # openai:MODEL[@BASE_URL], a model behind an OpenAI-compatible server
}
SYNTHESIZERS: dict[str, str] = {
    "world": "auditdm.world.synth",  # world: the world's renderer as G and E (E edits world images only)
    "diffusers": "auditdm.diffusion",  # diffusers:ID_OR_PATH: a text-to-image pipeline as G, an editing one as E
}
DOMAINS: dict[str, str] = {
    "world": "auditdm.world.domain:WORLD",  # the embedded world: images, oracle, grammar, benchmark
}
COMMANDS: dict[str, str] = {
    "world": "auditdm.world.cli:add_world",  # `auditdm world ...`: render, edit, ask, train, eval
}
MODEL_FORMS = ", ".join(f"{kind}:NAME" for kind in MODELS)


@dataclass(frozen=True)
class ModelSpec:
    """A model named as ``kind:name``: ``world:target``, ``hf:/models/my-vlm``, ``hf:org/name``."""

    kind: str
    name: str

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """The spec ``text`` names, or a clear error for a string that names no backend."""
        kind, sep, name = text.partition(":")
        if not sep or kind not in MODELS or not name:
            raise UserError(f"unknown model {text!r}: expected one of {MODEL_FORMS}")
        return cls(kind, name)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def backend(self) -> ModuleType:
        return importlib.import_module(MODELS[self.kind])

    def resolve(self) -> Path | str:
        """Where the model's weights are: a local folder, or a hub id."""
        source: Path | str = self.backend.resolve(self.name)
        return source

    def folder(self) -> Path:
        """The model's local folder (to train it, or read its card); an error for a hub id."""
        source = self.resolve()
        if not isinstance(source, Path):
            raise UserError(f"{self} is not a local model folder")
        return source


def default_references(target: str) -> tuple[str, ...]:
    """The references a target is audited against when none are named: its kind's (the world's
    for a world target), else those of the domain whose recipe trained it (its card says); an
    error for a target that has none."""
    spec = ModelSpec.parse(target)
    defaults = getattr(spec.backend, "default_references", None)
    if defaults is not None:
        return tuple(defaults())
    card = _card(spec)
    for name in DOMAINS:
        references = load_domain(name).references(card)
        if references:
            return references
    raise UserError(f"name the reference models with --references (a {spec.kind}: target has no default "
                    "references; the world's are the default for a world target and for a folder `auditdm "
                    "world train` wrote)")  # fmt: skip


def _card(spec: ModelSpec) -> dict[str, Any]:
    """The card of a model in a local folder; empty for any other."""
    from auditdm.models import read_card

    try:
        source = spec.resolve()
    except UserError:
        return {}
    return read_card(source) if isinstance(source, Path) else {}


def _named(table: dict[str, str], name: str, what: str) -> Any:
    if name not in table:
        raise UserError(f"unknown {what} {name!r} (have: {', '.join(table)})")
    module, _, attribute = table[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def add_commands(commands: Any) -> None:
    """Add every backend's own subcommands (``auditdm world ...``) to the command line."""
    for name in COMMANDS:
        _named(COMMANDS, name, "command group")(commands)


def _synthesis_backend(spec: str) -> tuple[ModuleType, str]:
    kind, _, name = spec.partition(":")
    if kind not in SYNTHESIZERS:
        raise UserError(f"unknown image synthesis backend {kind!r} (have: {', '.join(SYNTHESIZERS)})")
    return importlib.import_module(SYNTHESIZERS[kind]), name


def check_synthesizer(generator: str, editor: str) -> None:
    """Fail now, before any model loads, on a generator or editor spec that cannot play its role."""
    for role, spec in (("generator", generator), ("editor", editor)):
        backend, name = _synthesis_backend(spec)
        backend.check(name, role)


def load_synthesizer(generator: str = "world", editor: str = "world",
                     options: tuple[SynthesisOptions, SynthesisOptions] | None = None) -> Synthesizer:  # fmt: skip
    """G and E from their ``kind[:name]`` specs (``world``, ``diffusers:black-forest-labs/FLUX.1-dev``),
    with the generator's and the editor's options, as one synthesizer."""
    from auditdm.synth import SynthesisOptions, SynthesisPair

    roles: tuple[tuple[Role, str], ...] = (("generator", generator), ("editor", editor))
    made = []
    for (role, spec), role_options in zip(roles, options or (SynthesisOptions(), SynthesisOptions())):
        backend, name = _synthesis_backend(spec)
        made.append(backend.load(name, role, role_options))
    return SynthesisPair(*made)


def load_domain(name: str) -> Domain:
    """The embedded domain a name gives (``world``)."""
    domain: Domain = _named(DOMAINS, name, "domain")
    return domain


def domain_of(scene: Scene) -> Domain:
    """The domain that knows a scene: it can edit its image and check questions about it."""
    return load_domain(scene.domain)
