import torch

from auditdm.world.grammar import LEXICON
from auditdm.world.scene import Arrow, Clock, Scene, Shape, Sign
from auditdm.world.zoo.build import VLMSize, build_model, build_processor, build_tokenizer
from auditdm.world.zoo.pretrain import cell_labels, pretrain_vision

SCENE = Scene(items={"top left": Shape("star", "red", "tiny", "dotted"), "center": Clock(7, 30),
                     "bottom right": Sign(42), "middle left": Arrow("down", "blue"), "top right": Sign(5)})  # fmt: skip


def test_cells_are_labelled_with_what_they_hold() -> None:
    assert cell_labels(SCENE, "top left") | {} == {
        "kind": "shape", "shape": "star", "color": "red", "size": "tiny", "texture": "dotted",
        "direction": "none", "hour": "none", "minute": "none", "tens": "none", "units": "none",
        "row": "top", "column": "left",
    }  # fmt: skip
    assert (cell_labels(SCENE, "center")["hour"], cell_labels(SCENE, "center")["minute"]) == ("7", "30")
    assert (cell_labels(SCENE, "bottom right")["tens"], cell_labels(SCENE, "bottom right")["units"]) == ("4", "2")
    assert (cell_labels(SCENE, "top right")["tens"], cell_labels(SCENE, "top right")["units"]) == ("none", "5")
    assert cell_labels(SCENE, "middle left")["direction"] == "down"
    assert cell_labels(SCENE, "bottom left")["kind"] == "empty"
    assert (cell_labels(SCENE, "bottom left")["row"], cell_labels(SCENE, "middle right")["column"]) == ("bottom", "right")


def test_pretraining_moves_the_vision_tower_only() -> None:
    size = VLMSize(32, 1, 2, 32, 1, 2, image_size=48, patch_size=16)
    tokenizer = build_tokenizer(LEXICON)
    model = build_model(size, tokenizer)
    processor = build_processor(tokenizer, size.image_size, size.patch_size)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    losses = pretrain_vision(model, processor, steps=3, lr=1e-3, seed=0, batch_size=4, progress=False)
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]) != ("vision_tower" in name and "post_layernorm" not in name), name
