import torch
from torch import nn

from pipeline.activations import TopK, feature_maps, top_k_pass


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Conv2d(6, 5, 3), nn.ReLU(inplace=True)
    ).eval()


def brute_force(scores: torch.Tensor, k: int) -> list[list[int]]:
    """Rank every image per unit: higher score first, lower image id on ties."""
    ranked = []
    for unit in range(scores.shape[1]):
        order = sorted(range(scores.shape[0]), key=lambda i: (-float(scores[i, unit]), i))
        ranked.append(order[:k])
    return ranked


def test_streamed_top_k_equals_brute_force_ranking_with_ties():
    model = tiny_net()
    x = torch.randn(101, 3, 12, 12)
    x[40:60] = -10.0  # many images whose post-ReLU maxima tie at 0
    with torch.inference_mode():
        full = model(x.clone()).flatten(2)
    scores, positions = full.max(2)
    batches = [(torch.arange(s, min(s + 16, 101)), x[s : s + 16]) for s in range(0, 101, 16)]
    tops = top_k_pass(model, ["4"], batches, k=30)["4"]
    expected = brute_force(scores, 30)
    assert tops.images.tolist() == expected
    for unit in range(5):
        for rank, image in enumerate(expected[unit]):
            assert tops.scores[unit, rank] == scores[image, unit]
            assert tops.argmax[unit, rank] == positions[image, unit]


def test_merging_chunks_in_any_order_gives_the_same_ranking():
    scores = torch.randint(0, 5, (60, 3)).float()  # heavy ties
    argmax = torch.zeros(60, 3, dtype=torch.long)
    whole = TopK.empty(3, 10)
    whole.update(scores, argmax, torch.arange(60))
    parts = []
    for start in range(0, 60, 20):
        part = TopK.empty(3, 10)
        part.update(scores[start : start + 20], argmax[start : start + 20], torch.arange(start, start + 20))
        parts.append(part)
    merged = TopK.empty(3, 10)
    for part in reversed(parts):
        merged.merge(part)
    assert merged.images.tolist() == whole.images.tolist() == brute_force(scores, 10)


def test_recorded_maps_are_copies_not_overwritten_by_inplace_relu():
    model = tiny_net()
    x = torch.randn(4, 3, 12, 12)
    maps = feature_maps(model, ["0"], x)["0"]  # conv output, before the in-place ReLU
    assert (maps < 0).any()
    with torch.inference_mode():
        assert torch.allclose(maps, model[0](x))


def test_memory_is_bounded_by_k_not_by_images():
    top = TopK.empty(7, 4)
    for start in range(0, 1000, 100):
        top.update(torch.rand(100, 7), torch.zeros(100, 7, dtype=torch.long), torch.arange(start, start + 100))
    assert top.scores.shape == top.images.shape == (7, 4)
