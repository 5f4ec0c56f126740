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
      tensor: each reads a convolution's fresh output that nothing else reads. They become
      ``ClampInPlace``, which clamps a bf16 activation on the CPU as integers.

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
    for name, module in list(lighter.named_modules()):
        if isinstance(module, nn.ReLU):
            _set(lighter, name, ClampInPlace())
            changed += 1
        elif isinstance(module, nn.Hardtanh) and module.min_val == 0.0:
            _set(lighter, name, ClampInPlace(module.max_val))
            changed += 1
    if not changed:
        return model, 0
    worst = _moved(model, lighter, probe, run)
    if worst > TOLERANCE:
        logger.warning("Padding and activations kept as built: outputs moved by %.2g", worst)
        return model, 0
    return lighter, changed


class ClampInPlace(nn.Module):
    """ReLU (``upper`` None) or ReLU6 (``upper`` 6) that overwrites its input.

    On the CPU, torch clamps a bf16 tensor by widening every element to fp32 and rounding it
    back: on this project's CPUs it took 10 ms to ReLU a 51 MB bf16 activation in place,
    against 3.5 ms for the 103 MB fp32 one, a quarter of ResNet-50's eager bf16 forward
    pass. A bf16 number's sign is its top bit and, for numbers of one sign, the order of the
    bit patterns read as integers is the order of the numbers. So clamping the same bits
    viewed as int16 at 0 (and at the bits of ``upper``) gives the same activation for every
    number, infinities included (0.0 for -0.0), in 1 ms. A NaN whose sign bit is set becomes
    0.0 where torch keeps it NaN: bf16 has fp32's range, so an activation is NaN only where
    the fp32 one overflowed too. fp16 (whose overflow ``extractor.finite_rows`` must see as
    NaN), fp32, a GPU, and torch.compile (which fuses the activation into the convolution)
    get torch's own clamp.
    """

    def __init__(self, upper: float | None = None) -> None:
        super().__init__()
        self.upper = upper
        self.upper_bits = (
            None
            if upper is None
            else int(torch.tensor(upper, dtype=torch.bfloat16).view(torch.int16))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.dtype == torch.bfloat16
            and x.device.type == "cpu"
            and not torch.compiler.is_compiling()
        ):
            bits = x.view(torch.int16)
            bits.clamp_min_(0)
            if self.upper_bits is not None:
                bits.clamp_max_(self.upper_bits)
            return x
        return x.relu_() if self.upper is None else x.clamp_(0.0, self.upper)

    def extra_repr(self) -> str:
        return "ReLU, in place" if self.upper is None else f"ReLU{self.upper:g}, in place"


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
