"""The registry of backends, and the layering it keeps: the core reaches the world only through it."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from auditdm.backends import ModelSpec, default_references, load_domain, load_synthesizer
from auditdm.errors import UserError
from auditdm.models import load_model

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "auditdm"


def imports(path: Path) -> set[str]:
    """Every auditdm module a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("auditdm"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("auditdm")}
    return found


def modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def test_the_core_imports_no_world() -> None:
    core = [p for p in modules(PACKAGE) if "world" not in p.relative_to(PACKAGE).parts]
    leaks = {str(p.relative_to(PACKAGE)): m for p in core for m in imports(p) if m.startswith("auditdm.world")}
    assert not leaks


def test_the_world_takes_only_records_and_protocols_from_the_core() -> None:
    allowed = {"auditdm.records", "auditdm.errors", "auditdm.synth"}  # data, errors, the synthesizer protocol
    domain = [p for p in modules(PACKAGE / "world") if "zoo" not in p.parts and p.name != "cli.py"]
    reached = {str(p.relative_to(PACKAGE)): m for p in domain for m in imports(p)
               if not m.startswith("auditdm.world") and m not in allowed}  # fmt: skip
    assert not reached


def test_the_zoo_never_uses_the_audit_and_models_never_use_the_world() -> None:
    zoo = {m for p in modules(PACKAGE / "world" / "zoo") for m in imports(p)}
    assert not zoo & {"auditdm.auditor", "auditdm.audit", "auditdm.grpo"}
    assert not {m for p in modules(PACKAGE / "models") for m in imports(p) if m.startswith("auditdm.world")}


def test_model_specs_parse_once_into_their_backend() -> None:
    spec = ModelSpec.parse("hf:org/some-vlm")
    assert (spec.kind, spec.name, str(spec)) == ("hf", "org/some-vlm", "hf:org/some-vlm")
    assert spec.resolve() == "org/some-vlm"  # a hub id
    assert ModelSpec.parse("world:target").folder().is_dir()
    for bad in ("gpt", "foo:bar", "hf:"):
        with pytest.raises(UserError, match="unknown model"):
            ModelSpec.parse(bad)


def test_every_kind_loads_through_one_protocol() -> None:
    model = load_model("world:target")
    assert model.name == "world:target"
    image = load_domain("world").images(1, seed=0)[0]
    (reply,) = model.generate([image.picture.image], [image.question or ""])
    ((same, confidence),) = model.confidences([image.picture.image], [image.question or ""])
    assert reply == same and 0 < confidence <= 1
    hf = load_model(f"hf:{ModelSpec.parse('world:target').folder()}")
    assert hf.generate([image.picture.image], [image.question or ""]) == [reply]  # the same code path


def test_defaults_and_unknown_names(tmp_path) -> None:
    assert default_references("world:target") == ("world:ref-a", "world:ref-b", "world:ref-c")
    # A folder `auditdm world train` wrote has the world's references too, by its card.
    shutil.copytree(ModelSpec.parse("world:target").folder(), tmp_path / "trained")
    assert default_references(f"hf:{tmp_path / 'trained'}") == ("world:ref-a", "world:ref-b", "world:ref-c")
    (tmp_path / "trained" / "auditdm.json").unlink()
    for other in ("hf:/models/mine", f"hf:{tmp_path / 'trained'}", "openai:gpt-4o"):
        with pytest.raises(UserError, match="name the reference models with --references"):
            default_references(other)
    assert load_synthesizer("world").name == "world"
    with pytest.raises(UserError, match="unknown image synthesis backend 'flux'"):
        load_synthesizer("flux")
    with pytest.raises(UserError, match="unknown domain 'mars'"):
        load_domain("mars")
