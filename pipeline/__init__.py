"""Network dissection in plain PyTorch and NumPy, stage by stage (no Django here).

networks (built-ins, weights; architectures) -> graph (the traced graph) and geometry (its types,
theoretical receptive fields) -> images -> activations (top-K per unit) -> receptive_field
(occlusion: occluders, by full passes or the cone sweep: cones, cone_plan, occlusion_cone,
patches) -> segmentation. Beside them: demo_world, demo_training and crowd (the simulated workers).
"""
