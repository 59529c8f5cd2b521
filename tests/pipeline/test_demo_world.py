import collections

import numpy as np
import pytest
import torch

from pipeline import demo_world
from pipeline.demo_training import unit_concept_iou, world_tensors
from pipeline.networks import build_network


def test_scene_classes_are_pairs_and_distractors_never_complete_another_pair():
    pairs = {frozenset(p) for p in demo_world.SCENES.values()}
    rng = np.random.default_rng(3)
    for _ in range(300):
        scene = demo_world.make_scene(rng)
        present = set(scene.objects)
        assert set(demo_world.SCENES[scene.scene]) <= present
        completed = {p for p in pairs if p <= present}
        assert completed == {frozenset(demo_world.SCENES[scene.scene])}


def test_backgrounds_do_not_reveal_the_class():
    rng = np.random.default_rng(4)
    regions = collections.defaultdict(set)
    for _ in range(600):
        scene = demo_world.make_scene(rng)
        region_ids = set(np.unique(scene.truth[demo_world.TRUTH_LAYERS.index("region")]))
        regions[scene.scene] |= region_ids
    assert all(ids == set(range(1, len(demo_world.REGIONS) + 1)) for ids in regions.values())


def test_truth_covers_every_drawn_object(tmp_path):
    out = demo_world.generate(tmp_path, 12, seed=5)
    truth = demo_world.load_truth(out)
    assert truth["truth"].shape == (12, len(demo_world.TRUTH_LAYERS), 64, 64)
    assert len(list((out / "images").rglob("*.png"))) == 12
    object_layer = truth["truth"][:, demo_world.TRUTH_LAYERS.index("object")]
    for i in range(12):
        scene = list(demo_world.SCENES)[int(truth["scene"][i])]
        for name in demo_world.SCENES[scene]:
            assert (object_layer[i] == demo_world.VOCAB[name]["id"]).sum() > 10, (i, name)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "top"), [("demo", "features.6"), ("demo-resnet", "layer3")])
def test_bundled_demo_networks_have_object_detectors(name, top):
    net = build_network(name)
    x, y, truth = world_tensors(600, seed=99)
    with torch.inference_mode():
        accuracy = float((net.model(x).argmax(1) == y).float().mean())
    assert accuracy > 0.8
    matches = unit_concept_iou(net.model, top, x, truth)
    objects = [m for m in matches if m.iou > 0.1 and m.category == "object"]
    assert len(objects) >= 20
