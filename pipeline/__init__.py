"""Network dissection in plain PyTorch and NumPy, stage by stage (no Django here).

images -> activations (top-K per unit) -> receptive_field (occlusion) -> segmentation.
"""
