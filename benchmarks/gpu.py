"""The GPU figures, in one run of under 8 minutes on a CUDA machine: for AlexNet pool5 and ResNet-18
layer4 at paper settings (224 px, 11 x 11 occluders every 3 px: 5,184 copies), full passes against
the cone sweep with 1 and with 16 scattered targets, and the activation pass in images/s against a
bare forward. Each is a ratio measured in this one process (`benchmarks/run.py` on the CPU).

Run: `python benchmarks/gpu.py` (it says so and stops where torch sees no CUDA device).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import activation_pass, cone, print_cone  # noqa: E402


def main() -> None:
    if not torch.cuda.is_available():
        print("benchmarks/gpu.py: torch sees no CUDA device here; nothing measured.")
        return
    started = time.perf_counter()
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    for network, layers, layer in (
        ("alexnet", None, "pool5"),
        ("resnet18", ["layer1", "layer2", "layer3", "layer4"], "layer4"),
    ):
        act = activation_pass(20, 128, 2, network, layers, device="cuda")
        print(
            f"activation pass on cuda ({act['images']} images, {network}, top-60 streamed): "
            f"{act['top_k_images_per_s']:.0f} images/s vs bare forward {act['bare_images_per_s']:.0f} images/s "
            f"-> ratio {act['ratio']:.2f} (target >= 0.85)"
        )
        print_cone(cone(False, network, layer, (True,), 2, device="cuda"))
        print(f"  ({time.perf_counter() - started:.0f} s so far)")


if __name__ == "__main__":
    main()
