"""Batch normalisation folded into the convolution before it, and other rewrites for
inference that change no output (``streamline``).

In eval mode a BatchNorm2d is a per-channel scale and shift of its input. When that input is
a convolution's output and nothing else reads it, the scale and shift can live in the
convolution's weights and bias, and the normalisation pass disappears. Eager PyTorch runs
each BatchNorm as a separate pass over the activations: folding made ResNet-50 1.25x faster
in bf16 on this project's CPU (docs/benchmarks.md) and gives the same vectors.

The pairs are found by running the model once: a BatchNorm is folded into the convolution
whose output it received, when each of the two runs exactly once. The folded model is then
checked against the original on the same input; if the outputs differ (a network that
reads a convolution's output elsewhere too), the original is kept.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

logger = logging.getLogger(__name__)

TOLERANCE = 1e-4  # largest difference allowed, relative to the output's largest value


def fold_batchnorm(
    model: nn.Module, probe: torch.Tensor, run: Callable[[nn.Module, torch.Tensor], object]
) -> tuple[nn.Module, int]:
    """A copy of ``model`` (in eval mode) with its conv -> batch-norm pairs folded.

    ``run(model, probe)`` must call every path of the model that will be used (forward and
    the feature maps, say) and return the tensors to compare. Returns (model, pairs folded);
    the model is returned unchanged when nothing folds or the check fails.
    """
    model = model.eval()
    pairs = _pairs(model, probe, run)
    if not pairs:
        return model, 0
    folded = copy.deepcopy(model)
    modules = dict(folded.named_modules())
    for conv_name, bn_name in pairs:
        conv, bn = modules[conv_name], modules[bn_name]
        _set(folded, conv_name, fuse_conv_bn_eval(conv, bn))
        _set(folded, bn_name, nn.Identity())
    worst = _moved(model, folded, probe, run)
    if worst > TOLERANCE:
        logger.warning("Batch norm not folded: outputs moved by %.2g (relative)", worst)
        return model, 0
    return folded, len(pairs)


def streamline(
    model: nn.Module, probe: torch.Tensor, run: Callable[[nn.Module, torch.Tensor], object]
) -> tuple[nn.Module, int]:
    """A copy of ``model`` without two eager passes that change no output; returns (model,
    layers changed), or the model unchanged when nothing changes or the check fails.

    - A convolution that pads its input by a copy of it with a zero border (EfficientNet-Lite's
      TensorFlow-style "same" padding) pads inside the convolution instead, where the border
      is the same on opposite sides (stride 1: most of them; at stride 2 it is not).
    - ReLU-like activations (ReLU, ReLU6) overwrite their input instead of writing a new
      tensor: each reads a convolution's fresh output that nothing else reads.

    On EfficientNet-Lite0 in bf16 these two passes took 45 % of the catalog path's eager
    forward passes under cProfile; without them the model alone ran 304 img/s against 222
    (docs/benchmarks.md), with the same outputs bit for bit. ``run`` is as for
    ``fold_batchnorm``; the copy is checked against the model on the probe the same way.
    """
    model = model.eval()
    lighter = copy.deepcopy(model)
    changed = 0
    for module in lighter.modules():
        padding = getattr(module, "static_padding", None)
        if isinstance(module, nn.Conv2d) and isinstance(padding, nn.ZeroPad2d):
            left, right, top, bottom = padding.padding
            if left == right and top == bottom and tuple(module.padding) == (0, 0):
                module.padding = (top, left)
                module.static_padding = nn.Identity()
                changed += 1
        elif isinstance(module, nn.ReLU | nn.Hardtanh) and not module.inplace:
            module.inplace = True
            changed += 1
    if not changed:
        return model, 0
    worst = _moved(model, lighter, probe, run)
    if worst > TOLERANCE:
        logger.warning("Padding and activations kept as built: outputs moved by %.2g", worst)
        return model, 0
    return lighter, changed


def _pairs(
    model: nn.Module, probe: torch.Tensor, run: Callable[[nn.Module, torch.Tensor], object]
) -> list[tuple[str, str]]:
    """(conv name, batch-norm name) where the batch norm reads that conv's output."""
    names = {module: name for name, module in model.named_modules()}
    # Outputs are kept alive while the probe runs, so no other tensor can take their id.
    produced: dict[int, tuple[nn.Module, torch.Tensor]] = {}
    calls: dict[nn.Module, int] = {}
    fed: dict[nn.Module, nn.Module] = {}

    def after_conv(module, inputs, output):
        calls[module] = calls.get(module, 0) + 1
        produced[id(output)] = (module, output)

    def before_bn(module, inputs):
        calls[module] = calls.get(module, 0) + 1
        source = produced.get(id(inputs[0]))
        if source is not None:
            fed[module] = source[0]

    handles = [
        m.register_forward_hook(after_conv)
        for m in model.modules()
        if isinstance(m, nn.Conv2d)
    ] + [
        m.register_forward_pre_hook(before_bn)
        for m in model.modules()
        if isinstance(m, nn.BatchNorm2d)
    ]  # fmt: skip
    try:
        with torch.inference_mode():
            run(model, probe)
    finally:
        for handle in handles:
            handle.remove()
    # Each path calls a layer once; one that runs more often is shared and is left alone.
    runs = max(calls.values(), default=1)
    return [
        (names[conv], names[bn])
        for bn, conv in fed.items()
        if calls[bn] == calls[conv] == runs and list(fed.values()).count(conv) == 1
    ]


def _set(model: nn.Module, dotted: str, module: nn.Module) -> None:
    parent_name, _, attribute = dotted.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attribute, module)


def _moved(
    model: nn.Module,
    other: nn.Module,
    probe: torch.Tensor,
    run: Callable[[nn.Module, torch.Tensor], object],
) -> float:
    """How far the other model's outputs lie from the model's on the probe (relative)."""
    with torch.inference_mode():
        before, after = _flat(run(model, probe)), _flat(run(other, probe))
    return max(_relative(a, b) for a, b in zip(before, after, strict=True))


def _flat(outputs) -> list[torch.Tensor]:
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [t for item in outputs for t in _flat(item)]


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / a.abs().max().clamp_min(1e-12))
