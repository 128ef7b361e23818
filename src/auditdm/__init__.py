"""auditdm: audit multimodal models (AuditDM, arXiv 2512.16921).

The Python API, beside the ``auditdm`` command line::

    import auditdm

    summary = auditdm.audit("runs/py", probes=100, image_count=20)   # any AuditConfig field
    summary = auditdm.resume("runs/py")                                # continue a stopped run
    run = auditdm.open_run("runs/py")                                  # typed probe records
    failures = [p for p in run.probes() if p.score == 1]
    auditor = auditdm.train_auditor("runs/grpo", steps=300)           # any GRPOSettings field
    result = auditdm.rectify("runs/rect", iterations=1)               # any RectifyConfig field
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

# Imported before `audit` below is defined: importing a submodule binds its name on the
# package, and `auditdm.audit` must stay the function (the module is light: no torch).
import auditdm.audit as _audit  # noqa: F401
import auditdm.rectify as _rectify  # noqa: F401  (the same for `rectify`)
from auditdm import errors  # noqa: F401  (auditdm.errors.UserError, for callers)

if TYPE_CHECKING:
    from auditdm.records import RunSummary
    from auditdm.store import RunStore

__all__ = ["audit", "open_run", "rectify", "resume", "train_auditor"]


def audit(out: str | Path, *, progress: bool = False, **config: Any) -> RunSummary:
    """Run a new audit into the run directory ``out``; keywords are ``AuditConfig`` fields
    (target, references, auditor, probes, images, ...). Returns the run summary."""
    return _audit.start_audit(_audit.AuditConfig(**_tuples(config)), Path(out), progress=progress)


def resume(run_dir: str | Path, *, progress: bool = False) -> RunSummary:
    """Continue a stopped audit (even one killed with kill -9); returns the whole run's summary."""
    return _audit.resume_audit(Path(run_dir), progress=progress)


def open_run(run_dir: str | Path) -> RunStore:
    """A run directory's store: ``probes()`` (typed ``ProbeRecord``s), ``categories()``,
    ``sources()``, ``meta()``; ``auditdm.summary.summarize(store)`` gives its summary."""
    from auditdm.store import RunStore

    return RunStore.open(Path(run_dir))


def train_auditor(out: str | Path, *, resume: bool = False, final: str | Path | None = None,
                  progress: bool = False, **settings: Any) -> Path:  # fmt: skip
    """Train an auditor with GRPO into ``out``; keywords are ``GRPOSettings`` fields (auditor,
    target, steps, ...). Returns the folder of the trained auditor (``final``, else
    ``out/final``), which audits as ``auditor=str(folder)``."""
    from auditdm.grpo import GRPOSettings
    from auditdm.grpo import train_auditor as train

    return train(GRPOSettings(**_tuples(settings)), Path(out), resume=resume, final=Path(final) if final else None,
                 progress=progress)  # fmt: skip


def rectify(out: str | Path, *, resume: bool = False, progress: bool = False, **config: Any) -> dict[str, Any]:
    """Rectify a target into ``out`` (keywords: ``RectifyConfig`` fields), or with ``resume``
    continue the rectification there; returns ``rectification.json``'s object."""
    if resume:
        return _rectify.resume_rectify(Path(out), progress=progress)
    return _rectify.start_rectify(_rectify.RectifyConfig(**_tuples(config)), Path(out), progress=progress)


def _tuples(values: dict[str, Any]) -> dict[str, Any]:
    """Lists given for tuple fields (references, pairings, ...) as tuples: configs are frozen."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
