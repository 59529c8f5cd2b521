"""Dissection benchmarks, each a ratio against a baseline run in the same process.

1. Activation pass: images/s of `top_k_pass` (hooks on five AlexNet layers + streaming top-60)
   against a bare `model(x)` over the same batches. Target: at least 0.85.
2. Memory: peak RSS of the streaming top-K pass over 1,000 and 10,000 images (each in a fresh
   subprocess). Target: flat.
3. Occlusion: one sweep of an AlexNet pool5 image at paper settings (227 px, 11 x 11, stride 3:
   5,329 copies) watching all 256 units against the same sweep watching one unit, and the cost of a
   whole layer (256 units x 60 images) with one sweep per unique image against one per (unit, image).
4. Cone-restricted occlusion (torchvision AlexNet pool5, 224 px, paper settings: 5,184 copies): the
   full-forward sweep against the cone sweep, with one target unit (an image's usual share at paper
   scale) and with 16 (the share in a 1,000-scene run), each with every box recomputed and with the
   incremental convolutions (original output plus the scattered change); the multiply-add rate of
   both against this machine's matrix-multiply rate; and a whole layer's cost with cone sweeps.
   Target: 10x.

Run: `make bench` (or `python benchmarks/run.py [--quick]`).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.activations import top_k_pass  # noqa: E402
from pipeline.cone_plan import ConePlan  # noqa: E402
from pipeline.cones import count_madds  # noqa: E402
from pipeline.networks import Preprocessing, build_network  # noqa: E402
from pipeline.occluders import occluder_noise  # noqa: E402
from pipeline.occlusion_cone import ConeSweep, traced  # noqa: E402
from pipeline.receptive_field import (  # noqa: E402
    OcclusionSettings,
    Targets,
    occluder_grid,
    occlusion_sweep_full,
)

# pool1, pool2, conv3, conv4, pool5: the layers the paper annotated
ALEXNET_LAYERS = ["features.2", "features.5", "features.6", "features.8", "features.12"]
# The layers labs record on the modern built-ins (their activation pass is timed against a bare forward).
RESNET_LAYERS = ["layer1", "layer2", "layer3", "layer4"]
MODERN_LAYERS = {
    "resnet18": RESNET_LAYERS,
    "resnet50": RESNET_LAYERS,
    "vgg16": ["conv3_3", "conv4_3", "conv5_3"],
    "densenet161": ["denseblock2", "denseblock3", "denseblock4"],
}


def activation_pass(
    batches: int,
    batch_size: int,
    repeats: int = 3,
    network: str = "alexnet",
    layers: list[str] | None = None,
    device: str = "cpu",
) -> dict:
    """Best of `repeats` interleaved runs of each, so neither side gains from running second."""
    torch.manual_seed(0)
    net = build_network(network)
    model, size = net.model.to(device), net.preprocessing.input_size
    modules = [net.aliases.get(name, name) for name in (layers or ALEXNET_LAYERS)]
    data = [torch.randn(batch_size, 3, size, size, device=device) for _ in range(batches)]

    def bare() -> None:
        with torch.inference_mode():
            for x in data:
                model(x)
        _sync(device)

    def features_only() -> None:  # AlexNet: the same layers our pass runs (it stops after pool5)
        with torch.inference_mode():
            for x in data:
                (model.features if network == "alexnet" else model)(x)
        _sync(device)

    def ours() -> None:
        top_k_pass(
            model, modules, ((torch.arange(i * batch_size, (i + 1) * batch_size), x) for i, x in enumerate(data)), k=60
        )

    bare()  # warm-up
    best = {"bare": float("inf"), "features": float("inf"), "ours": float("inf")}
    for _ in range(repeats):
        for name, fn in (("bare", bare), ("features", features_only), ("ours", ours)):
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    n = batches * batch_size
    return {
        "images": n,
        "bare_images_per_s": n / best["bare"],
        "features_images_per_s": n / best["features"],
        "top_k_images_per_s": n / best["ours"],
        "ratio": best["bare"] / best["ours"],
        "ratio_same_layers": best["features"] / best["ours"],
    }


def memory_child(images: int) -> None:
    """Stream `images` demo-size images through the demo network's top-K pass; print peak RSS (MiB)."""
    torch.manual_seed(0)
    model = build_network("demo").model
    batches = (
        (torch.arange(s, min(s + 100, images)), torch.randn(min(100, images - s), 3, 64, 64))
        for s in range(0, images, 100)
    )
    top_k_pass(model, ["features.2", "features.5", "features.6"], batches, k=60)
    print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def memory(counts: list[int]) -> dict:
    result = {}
    for count in counts:
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(count)], capture_output=True, text=True, check=True
        ).stdout
        result[count] = json.loads(out.strip().splitlines()[-1])["peak_rss_mib"]
    return result


def occlusion(quick: bool) -> dict:
    torch.manual_seed(0)
    net = build_network("alexnet-caffe")
    model, prep = net.model, net.preprocessing
    image = torch.randn(3, 227, 227)
    settings = OcclusionSettings(size=11, stride=3, batch_size=128)
    side, copies = occluder_grid(227, settings)
    if quick:  # a band of positions only, for a smoke run
        settings = OcclusionSettings(size=11, stride=3 * 6, batch_size=128)
    with torch.inference_mode():
        pool5 = model.features(image[None])[0]  # 256 x 6 x 6
    flat = pool5.flatten(1).argmax(1)
    every = {"features.14": Targets(torch.arange(256), flat // 6, flat % 6)}
    one = {"features.14": Targets(torch.arange(1), flat[:1] // 6, flat[:1] % 6)}
    start = time.perf_counter()
    occlusion_sweep_full(model, image, every, Preprocessing(227, prep.mean, prep.std, prep.bgr), settings, seed=1)
    shared = time.perf_counter() - start
    start = time.perf_counter()
    occlusion_sweep_full(model, image, one, Preprocessing(227, prep.mean, prep.std, prep.bgr), settings, seed=1)
    single = time.perf_counter() - start
    return {
        "copies_per_image": copies if not quick else occluder_grid(227, settings)[1],
        "sweep_s_all_256_units": shared,
        "sweep_s_one_unit": single,
        "ratio_one_vs_all": single / shared,
    }


def matmul_gflops(n: int = 1024, repeats: int = 5) -> float:
    """This machine's float32 matrix-multiply rate (best of `repeats`): the ceiling for dense work."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cone(
    quick: bool,
    network: str = "alexnet",
    layer: str = "pool5",
    variants: tuple = (False, True),
    repeats: int = 3,
    device: str = "cpu",
) -> dict:
    """Full passes against the cone sweep for one network's layer at paper settings (224 px,
    11 x 11 every 3 px: 5,184 copies), with 1 and 16 scattered target units.

    Full passes cost the same per copy, so they are timed on every other occluder row and column (a
    quarter of the copies; best of two, first and last, interleaved with the cone runs) and scaled."""
    torch.manual_seed(0)
    net = build_network(network)
    model, name = net.model.to(device), net.aliases.get(layer, layer)
    image = torch.randn(3, 224, 224, device=device)
    stride = 3 * 6 if quick else 3
    settings = OcclusionSettings(size=11, stride=stride, batch_size=128)
    side, copies = occluder_grid(224, settings)
    graph = traced(model, name, 224)[0]
    target = graph.outputs[name]
    with torch.inference_mode():
        maps = graph.evaluate(image[None])[target][0]
    channels, width = maps.shape[0], maps.shape[-1]
    flat = maps.flatten(1).argmax(1).cpu()
    units = torch.randperm(channels)[:16]
    cases = {1: units[:1], 16: units}
    prep = Preprocessing(224)
    sampled = OcclusionSettings(size=11, stride=stride * 2, batch_size=128)  # a quarter of the copies
    sample = occluder_grid(224, sampled)[1]

    def full() -> float:
        one = {name: Targets(units[:1], flat[units[:1]] // width, flat[units[:1]] % width)}
        seconds = _timed(lambda: occlusion_sweep_full(model, image, one, prep, sampled, seed=1))
        return seconds * copies / sample

    noise = torch.cat(list(occluder_noise(224, settings, prep, seed=1))).to(device)
    full_runs = [full()]
    best: dict = {}
    for _ in range(1 if quick else repeats):
        for count, chosen in cases.items():
            for incremental in variants:
                sweep = ConeSweep(ConePlan(graph, target, 224, 11, stride, incremental), image)
                seconds = _timed(lambda s=sweep, c=chosen: s.discrepancy(c, flat[c] // width, flat[c] % width, noise))
                if (count, incremental) not in best or seconds < best[count, incremental][0]:
                    best[count, incremental] = (seconds, sweep.madds)
    full_runs.append(full())
    full_s = min(full_runs)
    madds = count_madds(graph, target)
    out = {
        "network": network,
        "layer": layer,
        "device": device,
        "copies": copies,
        "full_s": full_s,
        "full_runs": full_runs,
        "sample": sample,
        "full_gflops": 2 * madds * copies / full_s / 1e9,
    }
    for key, (seconds, done) in best.items():
        out[key] = {
            "s": seconds,
            "ratio": full_s / seconds,
            "gflops": 2 * done / seconds / 1e9,
            "madds_ratio": madds * copies / done,
        }
    return out


def layer_cost(per_image_s: float, unique_images: int, units: int = 256, k: int = 60) -> dict:
    naive = units * k * per_image_s
    shared = unique_images * per_image_s
    return {
        "pairs": units * k,
        "unique_images": unique_images,
        "naive_hours": naive / 3600,
        "shared_hours": shared / 3600,
        "saving": naive / shared,
    }


def unique_top_images(images: int) -> int:
    """Unique images among pool5's top-60 lists over demo-world scenes (random AlexNet weights)."""
    import numpy as np

    from pipeline.demo_world import make_scene
    from pipeline.images import crop_square, to_tensor

    torch.manual_seed(0)
    net = build_network("alexnet-caffe")
    rng = np.random.default_rng(0)
    prep = net.preprocessing

    def batches():
        for start in range(0, images, 32):
            xs = [to_tensor(crop_square(make_scene(rng).image, 227), prep) for _ in range(min(32, images - start))]
            yield torch.arange(start, start + len(xs)), torch.stack(xs)

    top = top_k_pass(net.model, ["features.14"], batches(), k=60)["features.14"]
    return int(torch.unique(top.images).numel())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="Small sizes, to check the benchmark runs")
    parser.add_argument("--memory-child", type=int)
    args = parser.parse_args()
    if args.memory_child:
        return memory_child(args.memory_child)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    act = activation_pass(4 if args.quick else 12, 16, 1 if args.quick else 3)
    print(
        f"activation pass ({act['images']} images, AlexNet, 5 layers recorded, top-60 streamed): "
        f"{act['top_k_images_per_s']:.1f} images/s vs bare forward {act['bare_images_per_s']:.1f} images/s "
        f"-> ratio {act['ratio']:.2f} (target >= 0.85); vs bare `features` only "
        f"{act['features_images_per_s']:.1f} images/s -> ratio {act['ratio_same_layers']:.2f}"
    )
    mem = memory([1000, 2000] if args.quick else [1000, 10000])
    (small, big), (ms, mb) = list(mem), list(mem.values())
    print(
        f"peak memory, streaming top-K (demo net, 3 layers): {small} images {ms:.0f} MiB, {big} images "
        f"{mb:.0f} MiB -> ratio {mb / ms:.2f} (target: flat, 1.00)"
    )
    occ = occlusion(args.quick)
    print(
        f"occlusion sweep, AlexNet (Caffe shape) pool5, {occ['copies_per_image']} copies/image: "
        f"{occ['sweep_s_all_256_units']:.1f} s watching all 256 units vs {occ['sweep_s_one_unit']:.1f} s "
        f"watching one -> ratio {occ['ratio_one_vs_all']:.2f} (one sweep serves every unit)"
    )
    unique = unique_top_images(200 if args.quick else 1000)
    cost = layer_cost(occ["sweep_s_all_256_units"], unique)
    print(
        f"whole layer (256 units x 60 top images = {cost['pairs']} pairs, {unique} unique images over "
        f"{200 if args.quick else 1000} scenes): shared sweeps {cost['shared_hours']:.1f} h vs naive "
        f"per-(unit, image) sweeps {cost['naive_hours']:.1f} h -> {cost['saving']:.1f}x less work"
    )
    print(f"matrix multiply on this machine: {matmul_gflops():.0f} GFLOP/s (float32, 1024 x 1024)")
    c = cone(args.quick)
    print_cone(c)
    pairs = 256 * 60
    naive, shared = pairs * c[1, True]["s"], unique * c[16, True]["s"]
    print(
        f"whole layer with cone sweeps: {unique} shared sweeps of ~16 targets {shared / 3600:.2f} h vs {pairs} "
        f"per-(unit, image) sweeps {naive / 3600:.2f} h -> {naive / shared:.1f}x; vs full-forward shared sweeps "
        f"{unique * c['full_s'] / 3600:.1f} h -> {unique * c['full_s'] / shared:.1f}x"
    )
    for network, layers in MODERN_LAYERS.items():
        act = activation_pass(2 if args.quick else 6, 16, 1 if args.quick else 2, network, layers)
        print(
            f"activation pass ({act['images']} images, {network}, {' '.join(layers)} recorded, top-60 streamed): "
            f"{act['top_k_images_per_s']:.1f} images/s vs bare forward {act['bare_images_per_s']:.1f} images/s "
            f"-> ratio {act['ratio']:.2f} (target >= 0.85)"
        )
        if network.startswith("resnet"):
            print_cone(cone(args.quick, network, "layer4", (True,), 2))


def print_cone(c: dict) -> None:
    print(
        f"cone-restricted sweep, {c['network']} {c['layer']} on {c['device']}, {c['copies']} copies/image: "
        f"full forward {c['full_s']:.1f} s (from {c['sample']} copies, best of "
        f"{', '.join(f'{t:.1f}' for t in c['full_runs'])}; "
        f"{c['full_gflops']:.0f} GFLOP/s)"
    )
    for count in (1, 16):
        for incremental, how in ((False, "boxes recomputed"), (True, "incremental")):
            if (count, incremental) not in c:
                continue
            r = c[count, incremental]
            target = 10 if count == 1 or c["network"] == "alexnet" else 5
            print(
                f"  cone, {count} target unit(s), {how}: {r['s']:.2f} s -> {r['ratio']:.1f}x (target >= {target}x; "
                f"{r['madds_ratio']:.1f}x fewer multiply-adds, {r['gflops']:.0f} GFLOP/s)"
            )


if __name__ == "__main__":
    main()
