"""A network as a graph of primitive layers, and every layer's geometry read from that graph.

Residual adds and concatenations join their inputs, so a unit's receptive field is the union of its
inputs' boxes, never a fold over the layers in execution order (which counts a ResNet's 1x1
downsample branch as one more layer in series and reports twice the true jump). The graph is traced
one module at a time with `torch.fx` and flattened: containers and blocks are traced into, leaf
modules and functions become nodes, and a recorded module's output is remembered as a node even
when that module is a block (`layer3`). The cone sweep (`pipeline.occlusion_cone`) runs on the same
graph, so the geometry and the sweep can never disagree about the network. The geometry's types
(`Window` among them) live in `pipeline.geometry`.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from pipeline.geometry import GraphError, Window

__all__ = ["ACTIVATIONS", "Graph", "GraphError", "Node", "Window", "fold_batch_norms", "trace"]


@dataclass
class Node:
    """One primitive step: `op(*values of inputs)` gives its output.

    kind: "input", "window" (convolutions, pools, padding: `windows` per axis), "point" (per
    position: ReLU, BatchNorm, Dropout, LRN), "add" (elementwise joins), "cat" (channel concatenation)
    or "other" (anything else: fine after the recorded layers, an error before them).
    """

    name: str
    kind: str
    op: Callable[..., torch.Tensor]
    inputs: list[int]
    module: nn.Module | None = None
    windows: tuple[Window, Window] | None = None
    shape: tuple[int, int, int] = (0, 0, 0)  # C x H x W of the output for one image
    why: str = ""  # for "other": what the node is

    @property
    def channelwise(self) -> bool:
        """Whether output channel c depends on input channel c alone (LRN mixes channels)."""
        if self.kind == "point":
            return not isinstance(self.module, nn.LocalResponseNorm)
        return self.kind in ("add",) or (self.kind == "window" and not isinstance(self.module, nn.Conv2d))


@dataclass
class Graph:
    nodes: list[Node]
    outputs: dict[str, int]  # recorded module name -> node index
    values: list[torch.Tensor] = field(default_factory=list, repr=False)  # one image's outputs, by node

    def evaluate(self, x: torch.Tensor, stop: int | None = None) -> list[torch.Tensor]:
        """Every node's output for input `x` (N x 3 x S x S), up to node `stop` (default: all)."""
        values: list[torch.Tensor] = []
        for node in self.nodes[: (len(self.nodes) if stop is None else stop + 1)]:
            values.append(x if node.kind == "input" else node.op(*(values[i] for i in node.inputs)))
        return values


_POINT = (nn.ReLU, nn.BatchNorm2d, nn.Dropout, nn.Dropout2d, nn.Identity, nn.LocalResponseNorm)
# Elementwise activations: each output reads its own input alone, channel by channel.
ACTIVATIONS = (
    nn.Tanh,
    nn.Sigmoid,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.ReLU6,
    nn.Hardswish,
    nn.Hardtanh,
    nn.Hardsigmoid,
    nn.Softplus,
    nn.Mish,
)
_RELUS = {F.relu, torch.relu, torch.relu_}
_ADDS = {operator.add, operator.iadd, torch.add}


def trace(model: nn.Module, recorded: list[str], input_size: int) -> Graph:
    """The primitive graph of `model` up to the recorded modules (their ancestors only), with shapes.

    Raises GraphError when a module cannot be traced (its forward branches on tensor values, say)."""
    nodes: list[Node] = [Node("input", "input", lambda x: x, [])]
    outputs: dict[str, int] = {}
    wanted = set(recorded)
    _flatten(model, "", [_Ref(0)], nodes, outputs, wanted)
    missing = [name for name in recorded if name not in outputs]
    if missing:
        raise GraphError(f"The traced graph never calls module(s) {', '.join(missing)}: their output is not used.")
    graph = _prune(nodes, {name: outputs[name] for name in recorded})
    weight = next(iter(model.parameters()), torch.empty(0))
    try:
        with torch.inference_mode():
            values = graph.evaluate(torch.zeros(1, 3, input_size, input_size, dtype=weight.dtype, device=weight.device))
    except (RuntimeError, ValueError, TypeError) as exc:  # a map shrunk to nothing, mismatched shapes
        raise GraphError(
            f"The network does not run on {input_size} x {input_size} px input up to {', '.join(recorded)}: {exc}"
        ) from exc
    for node, value in zip(graph.nodes, values, strict=True):
        if value.dim() == 4:
            channels, height, width = (int(v) for v in value.shape[1:])
            node.shape = (channels, height, width)
    return graph


class _OneLevel(fx.Tracer):
    """Every submodule call becomes a node; `_flatten` traces into the ones that are not leaves."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return True


def _flatten(
    module: nn.Module, prefix: str, inputs: list[Any], nodes: list[Node], outputs: dict[str, int], wanted: set[str]
) -> _Ref:
    try:
        graph = _OneLevel().trace(module)
    except Exception as exc:  # fx raises several types (TraceError, TypeError on Proxy bools, ...)
        raise GraphError(
            f"Cannot trace module {prefix or type(module).__name__!r} ({type(module).__name__}): {exc}"
        ) from exc
    env: dict[fx.Node, Any] = {}
    placeholders = iter(inputs)
    result = None
    for fx_node in graph.nodes:
        if fx_node.op == "placeholder":
            env[fx_node] = next(placeholders, None)
        elif fx_node.op == "output":
            result = _resolve(fx_node.args[0], env)
        elif fx_node.op == "call_module":
            name = f"{prefix}.{fx_node.target}" if prefix else str(fx_node.target)
            sub = module.get_submodule(str(fx_node.target))
            args = [_resolve(a, env) for a in fx_node.args]
            if list(sub.children()):
                env[fx_node] = _flatten(sub, name, args, nodes, outputs, wanted)
            else:
                env[fx_node] = _append(nodes, _module_node(name, sub, args))
            if name in wanted and isinstance(env[fx_node], _Ref):
                outputs[name] = env[fx_node].index
        elif fx_node.op == "get_attr":
            env[fx_node] = _Constant(_attr(module, str(fx_node.target)))
        else:  # call_function, call_method
            args = _resolve(fx_node.args, env)
            kwargs = _resolve(dict(fx_node.kwargs), env)
            env[fx_node] = _append(nodes, _function_node(prefix, fx_node, args, kwargs))
    if not isinstance(result, _Ref):
        raise GraphError(f"Module {prefix!r} ({type(module).__name__}) does not return one tensor.")
    return result


@dataclass(frozen=True)
class _Constant:
    value: Any


@dataclass(frozen=True)
class _Ref:
    """A node's output inside a traced call's arguments (literal ints stay ints)."""

    index: int


def _attr(module: nn.Module, path: str) -> Any:
    for part in path.split("."):
        module = getattr(module, part)
    return module


def _resolve(arg: Any, env: dict) -> Any:
    if isinstance(arg, fx.Node):
        return env[arg]
    if isinstance(arg, (list, tuple)):
        return type(arg)(_resolve(a, env) for a in arg)
    if isinstance(arg, dict):
        return {k: _resolve(v, env) for k, v in arg.items()}
    return arg


def _append(nodes: list[Node], node: Node) -> _Ref:
    nodes.append(node)
    return _Ref(len(nodes) - 1)


def _module_node(name: str, module: nn.Module, args: list[Any]) -> Node:
    refs = _refs(args)
    if len(refs) != 1 or len(args) != 1:
        return Node(name, "other", _call_with(module, args), refs, module, why=type(module).__name__)
    if isinstance(module, nn.ReLU):
        return Node(name, "point", torch.relu, refs, module)  # never in place: originals are kept
    if isinstance(module, _POINT):
        return Node(name, "point", module, refs, module)
    if isinstance(module, ACTIVATIONS):
        if getattr(module, "inplace", False):  # a copy that leaves its input (an original map) alone
            module = copy.copy(module)
            module.inplace = False
        return Node(name, "point", module, refs, module)
    windows = _module_windows(module)
    if windows is not None:
        return Node(name, "window", module, refs, module, windows)
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return Node(name, "window", module, refs, module, None)  # its windows follow the shapes
    return Node(name, "other", module, refs, module, why=type(module).__name__)


def _call_with(module: nn.Module, args: list[Any]) -> Callable[..., torch.Tensor]:
    def op(*values: torch.Tensor) -> torch.Tensor:
        it = iter(values)
        return module(*_fill(args, it))

    return op


def _pair(value: Any) -> tuple[int, int]:
    return (int(value[0]), int(value[1])) if isinstance(value, (tuple, list)) else (int(value), int(value))


def _module_windows(module: nn.Module) -> tuple[Window, Window] | None:
    if isinstance(module, nn.Conv2d):
        k, s, d = _pair(module.kernel_size), _pair(module.stride), _pair(module.dilation)
        if module.padding == "same":
            p = tuple(d[i] * (k[i] - 1) // 2 for i in range(2))
        elif module.padding == "valid":
            p = (0, 0)
        else:
            p = _pair(module.padding)
        return Window(k[0], s[0], p[0], d[0]), Window(k[1], s[1], p[1], d[1])
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        k = _pair(module.kernel_size)
        s = _pair(module.stride or module.kernel_size)
        p = _pair(module.padding)
        d = _pair(getattr(module, "dilation", 1))
        return Window(k[0], s[0], p[0], d[0]), Window(k[1], s[1], p[1], d[1])
    if isinstance(module, (nn.ZeroPad2d, nn.ConstantPad2d)):
        left, _right, top, _bottom = module.padding
        return Window(pad=top), Window(pad=left)
    return None


def _function_node(prefix: str, fx_node: fx.Node, args: Any, kwargs: dict) -> Node:
    target = fx_node.target
    label = getattr(target, "__name__", str(target))
    name = f"{prefix}:{label}" if prefix else label
    refs = _refs(args) + _refs(kwargs)

    def op(*values: torch.Tensor) -> torch.Tensor:
        it = iter(values)
        a, kw = _fill(args, it), _fill(kwargs, it)
        if fx_node.op == "call_method" or not callable(target):
            return getattr(a[0], str(target))(*a[1:], **kw)
        return target(*a, **kw)

    if fx_node.op == "call_function" and target in _RELUS and len(refs) == 1:
        return Node(name, "point", torch.relu, refs)
    if fx_node.op == "call_method" and target in ("relu", "relu_") and len(refs) == 1:
        return Node(name, "point", torch.relu, refs)
    if fx_node.op == "call_function" and target in _ADDS and len(refs) == 2 and not kwargs:
        return Node(name, "add", torch.add, refs)
    if fx_node.op == "call_function" and target is torch.cat and _cat_dim(args, kwargs) == 1:
        return Node(name, "cat", lambda *xs: torch.cat(xs, 1), refs)
    if fx_node.op == "call_function" and target is F.adaptive_avg_pool2d and len(refs) == 1:
        size = args[1] if len(args) > 1 else kwargs.get("output_size")
        return Node(name, "window", op, refs, nn.AdaptiveAvgPool2d(size))
    return Node(name, "other", op, refs, why=f"{fx_node.op} {label}")


def _cat_dim(args: Any, kwargs: dict) -> int:
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    return int(dim)


def _refs(arg: Any) -> list[int]:
    if isinstance(arg, _Ref):
        return [arg.index]
    if isinstance(arg, (list, tuple)):
        return [r for a in arg for r in _refs(a)]
    if isinstance(arg, dict):
        return [r for a in arg.values() for r in _refs(a)]
    return []


def _fill(arg: Any, values: Any) -> Any:
    if isinstance(arg, _Ref):
        return next(values)
    if isinstance(arg, _Constant):
        return arg.value
    if isinstance(arg, (list, tuple)):
        return type(arg)(_fill(a, values) for a in arg)
    if isinstance(arg, dict):
        return {k: _fill(v, values) for k, v in arg.items()}
    return arg


def _prune(nodes: list[Node], outputs: dict[str, int]) -> Graph:
    """Keep the recorded nodes' ancestors only, renumbered in execution order."""
    keep, stack = set(), list(outputs.values())
    while stack:
        i = stack.pop()
        if i not in keep:
            keep.add(i)
            stack.extend(nodes[i].inputs)
    order = sorted(keep | {0})
    index = {old: new for new, old in enumerate(order)}
    kept = []
    for old in order:
        node = nodes[old]
        node.inputs = [index[i] for i in node.inputs]
        kept.append(node)
    return Graph(kept, {name: index[i] for name, i in outputs.items()})


def fold_batch_norms(graph: Graph) -> Graph:
    """The same graph with each eval-mode BatchNorm that alone reads a convolution folded into it
    (scaled weights, shifted bias) and dropped. The network's own modules are untouched. The cone
    sweep runs on this: one pass fewer over every patch, and the ReLU after may work in place."""
    consumers = [0] * len(graph.nodes)
    for node in graph.nodes:
        for j in node.inputs:
            consumers[j] += 1
    nodes = [copy.copy(node) for node in graph.nodes]
    replaced: dict[int, int] = {}  # a folded BatchNorm -> its convolution
    for i, node in enumerate(nodes):
        bn = node.module
        if not (isinstance(bn, nn.BatchNorm2d) and not bn.training and bn.track_running_stats):
            continue
        j = node.inputs[0]
        conv = nodes[j].module
        mean, var = bn.running_mean, bn.running_var
        if not isinstance(conv, nn.Conv2d) or consumers[j] != 1 or mean is None or var is None:
            continue
        with torch.no_grad():
            scale = var.add(bn.eps).rsqrt()
            if bn.weight is not None:
                scale = scale * bn.weight
            shift = -mean * scale + (bn.bias if bn.bias is not None else 0)
            folded = copy.deepcopy(conv)
            folded.weight.mul_(scale.view(-1, 1, 1, 1))
            bias = shift if conv.bias is None else conv.bias * scale + shift
            folded.bias = nn.Parameter(bias.detach().clone(), requires_grad=False)
        nodes[j].module, nodes[j].op = folded, folded
        replaced[i] = j
    index: dict[int, int] = {}
    kept: list[Node] = []
    for i, node in enumerate(nodes):
        if i in replaced:
            index[i] = index[replaced[i]]
            continue
        node.inputs = [index[k] for k in node.inputs]
        index[i] = len(kept)
        kept.append(node)
    return Graph(kept, {name: index[i] for name, i in graph.outputs.items()})
