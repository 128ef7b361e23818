"""The audit's models on Ray (``--executor ray``): each model is a pool of Ray actors.

The target, every reference, the auditor and a model-based synthesizer (``diffusers:``) are
loaded into actors, ``--replicas`` of each, with their resources declared: a share of a GPU
each when the run's device is CUDA (as many actors on a GPU as there must be for all to fit),
else a share of the CPUs. ``RemoteModel`` and ``RemoteSynthesizer`` are the ``VLM`` and
``Synthesizer`` protocols over such a pool, so the audit loop runs unchanged: the driver plans
the probes and alone writes the run store, batch by batch. ``openai:`` models stay in the
driver: their concurrency is their requests in flight, and an actor would only add a hop.

The store must be identical to an in-process run's, so work is split only where that cannot
change a reply: a greedy call is cut at the model's own batch boundaries (``batch_size``:
the same prompts padded together, so the same numbers) and the pieces go to the replicas in
turn; a sampled call (the auditor's) is one stream of random numbers and goes whole to one
replica. An actor that dies is restarted (``max_restarts``) and its calls retried
(``max_task_retries``); every call is a pure function of its inputs, so a retry gives the
reply the first try would have given.

Why actors, not Ray Data (``benchmarks/ray_choice.py``, this 2-core machine shared with other
work, the world target answering 8 batches of 50 questions on 2 replicas): the actors
started in 28.8 s (worker processes and model loads) and then answered the 8 batches in
1.3 s. ``map_batches`` with an actor pool took 156.8 s with a dataset per audit batch: the
pool and its models start again for every dataset, about 20 s a batch. Streaming all 8
batches through one dataset took 21.7 s, loads included, as fast as the actors; but the
stream hands batches back when it decides, while the audit must make, answer and commit
batch k before batch k+1 (its seeds, the single writer and the resume depend on that
order), and the auditor's output feeds the synthesizer, then the auditor again, then the
panel: a chain of dependent calls per batch, not one map. Actors keep the models loaded
for the whole run and leave the order to the driver.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Sequence
from functools import partial
from types import ModuleType
from typing import TYPE_CHECKING, Any

from auditdm.backends import ModelSpec, load_synthesizer
from auditdm.errors import UserError
from auditdm.models import VLM, load_model

if TYPE_CHECKING:
    from PIL import Image

    from auditdm.audit import AuditConfig
    from auditdm.records import Picture
    from auditdm.synth import SynthesisOptions, Synthesizer

RESTARTS = 3  # a model that dies more often than this (out of memory every time, say) stops the run
IN_DRIVER = ("openai",)  # model kinds that answer over the network: no actors


def require_ray() -> ModuleType:
    """The ``ray`` module, or one line saying what to install."""
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'auditdm[ray]'") from None
    return ray


class _Host:
    """One replica: a model (or synthesizer) loaded in the actor's own process."""

    def __init__(self, load: Callable[[], Any], threads: int) -> None:
        import torch

        torch.set_num_threads(threads)  # its share of the CPUs: actors on one node must not fight over cores
        self.model = load()

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.model, method)(*args, **kwargs)

    def name(self) -> str:
        name: str = self.model.name
        return name

    def batch_size(self) -> int | None:
        """How many prompts the model pads and runs together (None: it does not say)."""
        size = getattr(self.model, "batch_size", None)
        return size if isinstance(size, int) else None

    def pid(self) -> int:
        """The actor's process (the tests kill it)."""
        return os.getpid()


def for_audit(config: AuditConfig) -> RayExecutor:
    """The executor of an audit, sized for the models it loads into actors."""
    from auditdm.auditor import auditor_spec
    from auditdm.backends import default_references

    models = (config.target, *(config.references or default_references(config.target)), auditor_spec(config.auditor))
    actors = sum(ModelSpec.parse(spec).kind not in IN_DRIVER for spec in models)
    actors += (config.generator, config.editor) != ("world", "world")
    return RayExecutor(config.ray_address, config.replicas, config.device, max(1, actors))


class RayExecutor:
    """Loads models into actor pools on a Ray cluster: a new local one sized to the machine
    (``address`` None), the one this process already joined, or ``auto`` / ``HOST:PORT``.

    ``actors`` is how many models will be loaded (each ``replicas`` times): each replica's
    share of the GPUs or CPUs is sized so that all of them fit at once."""

    def __init__(self, address: str | None, replicas: int, device: str, actors: int) -> None:
        self.ray = require_ray()
        if not self.ray.is_initialized():
            self.ray.init(address=address, include_dashboard=False, log_to_driver=False)
        resources = self.ray.cluster_resources()
        count = actors * replicas
        self.replicas = replicas
        self.device = "cuda" if device.startswith("cuda") else device  # Ray shows an actor only its own GPU
        cpus = resources.get("CPU", 1.0)
        if self.device == "cuda":
            gpus = resources.get("GPU", 0.0)
            if not gpus:
                raise UserError(f"--device {device}: the Ray cluster has no GPU")
            self.resources = {"num_cpus": min(1.0, cpus / count), "num_gpus": 1 / math.ceil(count / gpus)}
        else:
            self.resources = {"num_cpus": math.floor(100 * min(1.0, cpus / count)) / 100}
        self.threads = max(1, int(cpus // count))
        self._host = self.ray.remote(_Host)

    def load_model(self, spec: str, **options: Any) -> VLM:
        """``models.load_model`` with the model in actors (an ``openai:`` model in the driver)."""
        parsed = ModelSpec.parse(spec)
        if parsed.kind in IN_DRIVER:
            return load_model(spec, **options)
        parsed.resolve()  # a missing folder fails here, in one line, before any actor starts
        options = {**options, "device": self.device} if "device" in options else options
        hosts = self._start(spec, partial(load_model, spec, **options))
        return RemoteModel(spec, hosts, self._get(hosts[0].batch_size.remote()), self._get)

    def load_synthesizer(self, generator: str = "world", editor: str = "world",
                         options: tuple[SynthesisOptions, SynthesisOptions] | None = None) -> Synthesizer:  # fmt: skip
        """``backends.load_synthesizer``; in one actor when a model draws (the world's renderer
        is cheap and stays in the driver)."""
        if generator == editor == "world":
            return load_synthesizer(generator, editor, options)
        from auditdm.synth import SynthesisOptions

        first, second = (self._placed(o) for o in options or (SynthesisOptions(), SynthesisOptions()))
        placed = (first, second)
        host = self._start(f"{generator}+{editor}", partial(load_synthesizer, generator, editor, placed))[0]
        return RemoteSynthesizer(self._get(host.name.remote()), host, self._get)

    def _placed(self, options: SynthesisOptions) -> SynthesisOptions:
        import dataclasses

        return dataclasses.replace(options, device=self.device) if options.device.startswith("cuda") else options

    def _start(self, name: str, load: Callable[[], Any]) -> list[Any]:
        hosts = [self._host.options(name=f"auditdm {name} #{k}", max_restarts=RESTARTS, max_task_retries=RESTARTS,
                                    **self.resources).remote(load, self.threads)  # fmt: skip
                 for k in range(self.replicas)]
        for host in hosts:  # a model that cannot load says why now
            self._get(host.pid.remote())
        return hosts

    def _get(self, refs: Any) -> Any:
        """``ray.get``, re-raising an error of ours (bad input) as itself, not wrapped by Ray."""
        try:
            return self.ray.get(refs)
        except self.ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, UserError):
                raise error.cause from None
            raise
        except self.ray.exceptions.ActorDiedError as error:
            cause = getattr(error, "error_msg", str(error))
            raise UserError(f"a model actor could not start: {cause}") from None


class RemoteModel:
    """A VLM whose replicas are Ray actors (see the module docstring for how calls split)."""

    remote = True  # it computes in its actors, so a panel asks it beside its other models

    def __init__(self, name: str, hosts: Sequence[Any], batch_size: int | None, get: Callable[[Any], Any]) -> None:
        self.name = name
        self.hosts = list(hosts)
        self.batch_size = batch_size
        self._get = get
        self._turn = itertools.count()  # which replica takes the next whole call

    def generate(self, images: Sequence[Image.Image], prompts: Sequence[str], *, max_new_tokens: int | None = None,
                 temperature: float = 0.0, seed: int = 0, starts: Sequence[str] = ()) -> list[str]:  # fmt: skip
        options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "temperature": temperature, "seed": seed}
        if temperature > 0 or starts:  # an auditor's texts: one replica, as the batch was sampled together
            options["starts"] = list(starts)
            host = self.hosts[next(self._turn) % len(self.hosts)]
            replies: list[str] = self._get(host.call.remote("generate", list(images), list(prompts), **options))
            return replies
        return self._split("generate", images, prompts, **options)

    def confidences(self, images: Sequence[Image.Image], prompts: Sequence[str]) -> list[tuple[str, float]]:
        return self._split("confidences", images, prompts)

    def _split(self, method: str, images: Sequence[Image.Image], prompts: Sequence[str], **options: Any) -> list[Any]:
        """A greedy call cut at the model's batch boundaries, the pieces dealt to the replicas."""
        size = self.batch_size or len(images) or 1
        starts = range(0, len(images), size)
        refs = [self.hosts[k % len(self.hosts)].call.remote(method, list(images[s : s + size]),
                                                            list(prompts[s : s + size]), **options)
                for k, s in enumerate(starts)]  # fmt: skip
        return [reply for piece in self._get(refs) for reply in piece]


class RemoteSynthesizer:
    """A synthesizer (G and E) in a Ray actor."""

    def __init__(self, name: str, host: Any, get: Callable[[Any], Any]) -> None:
        self._name = name
        self.host = host
        self._get = get

    @property
    def name(self) -> str:
        return self._name

    def generate(self, caption: str, seed: int) -> Picture:
        picture: Picture = self._get(self.host.call.remote("generate", caption, seed))
        return picture

    def edit(self, picture: Picture, command: str, seed: int) -> Picture:
        edited: Picture = self._get(self.host.call.remote("edit", picture, command, seed))
        return edited
