"""Plain Ray actors or Ray Data ``map_batches`` with an actor pool, for the audit's model calls?

The world target answers BATCHES audit batches of 50 world questions on 2 replicas, three ways:
``ray_executor``'s actors (one call per audit batch, cut at the model's batch boundaries);
Ray Data with a dataset per audit batch (the audit commits each batch before it makes the
next); Ray Data streaming every batch through one dataset (the actors last: their pool takes the CPUs).

    PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/ray_choice.py
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import ray
from PIL import Image

from auditdm.backends import load_domain
from auditdm.models import load_model
from auditdm.ray_executor import RayExecutor

BATCHES, SIZE, REPLICAS = 8, 50, 2


class Answerer:
    """A Ray Data actor: the world target, answering rows of images and questions."""

    def __init__(self) -> None:
        import torch

        torch.set_num_threads(1)
        self.model = load_model("world:target")

    def __call__(self, rows: dict[str, Any]) -> dict[str, Any]:
        images = [Image.fromarray(pixels) for pixels in rows["image"]]
        return {"answer": np.array(self.model.generate(images, list(rows["question"])))}


def main() -> None:
    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    print(f"ray.init: {time.perf_counter() - started:.1f} s")
    examples = load_domain("world").benchmark(BATCHES * SIZE // 12 + 1)[: BATCHES * SIZE]
    batches = [examples[b * SIZE : (b + 1) * SIZE] for b in range(BATCHES)]

    def dataset(rows: list[Any]) -> Any:
        items = [{"image": np.asarray(e.image.convert("RGB")), "question": e.question} for e in rows]
        return ray.data.from_items(items).map_batches(Answerer, batch_size=32, concurrency=REPLICAS, num_cpus=0.5)

    started = time.perf_counter()
    for batch in batches:
        dataset(batch).take_all()
    print(f"ray.data, a dataset per audit batch: {time.perf_counter() - started:.1f} s (model loads included)")
    started = time.perf_counter()
    dataset([e for batch in batches for e in batch]).take_all()
    print(f"ray.data, one streaming dataset: {time.perf_counter() - started:.1f} s (model loads included)")
    started = time.perf_counter()
    model = RayExecutor(None, REPLICAS, "cpu", 1).load_model("world:target")
    loaded = time.perf_counter()
    for batch in batches:
        model.generate([e.image for e in batch], [e.question for e in batch])
    done = time.perf_counter()
    print(f"actors: start {loaded - started:.1f} s, {BATCHES} batches {done - loaded:.1f} s")


if __name__ == "__main__":
    main()
