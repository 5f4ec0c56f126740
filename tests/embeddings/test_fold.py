"""Batch norm folded into convolutions, padding and activations streamlined: same outputs,
fewer passes."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision import models

from embeddings.fold import ClampInPlace, fold_batchnorm, streamline
from embeddings.registry import ResNetFeatures, get_backbone

BOTH_PATHS = lambda m, x: (m(x), m.feature_maps(x))  # noqa: E731


def batch_norms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def with_trained_statistics(model: nn.Module) -> nn.Module:
    """Random running statistics and affine parameters, as training leaves them."""
    generator = torch.Generator().manual_seed(1)
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        n = bn.num_features
        bn.running_mean.copy_(torch.randn(n, generator=generator) * 0.5)
        bn.running_var.copy_(torch.rand(n, generator=generator) * 2 + 0.1)
        bn.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
        bn.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)
    return model


def assert_same_outputs(a: nn.Module, b: nn.Module, x: torch.Tensor) -> None:
    with torch.inference_mode():
        for before, after in zip(BOTH_PATHS(a, x), BOTH_PATHS(b, x), strict=True):
            for p, q in zip(
                before if isinstance(before, list) else [before],
                after if isinstance(after, list) else [after],
                strict=True,
            ):
                assert (p - q).abs().max() <= 1e-4 * p.abs().max()


def test_resnet_folds_every_batch_norm_and_keeps_its_outputs() -> None:
    torch.manual_seed(0)
    original = ResNetFeatures(with_trained_statistics(models.resnet18(weights=None))).eval()
    # when
    folded, pairs = fold_batchnorm(original, torch.randn(1, 3, 64, 64), BOTH_PATHS)
    # then: 20 pairs (stem, 16 block convolutions, 3 shortcuts); the original is untouched
    assert pairs == 20 and batch_norms(folded) == 0 and batch_norms(original) == 20
    assert_same_outputs(original, folded, torch.randn(2, 3, 96, 128))


def test_the_offline_backbone_loads_folded_with_its_real_weights() -> None:
    backbone = get_backbone("efficientnet_lite0")
    # when
    model, _ = backbone.load(download=False)
    # then
    classifier = backbone.build()
    classifier.load_state_dict(torch.load(backbone.weights_path(), weights_only=True))
    unfolded = backbone.features(classifier).eval()
    assert batch_norms(unfolded) == 49 and batch_norms(model) == 0
    assert_same_outputs(unfolded, model, torch.randn(2, 3, 224, 224))


class ReadsTheConvolutionTwice(nn.Module):
    """A residual taken before the normalisation: the pair must not be folded."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.bn(y) + y

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.forward(x)]


def test_a_convolution_output_read_elsewhere_is_left_unfolded() -> None:
    torch.manual_seed(0)
    model = with_trained_statistics(ReadsTheConvolutionTwice()).eval()
    x = torch.randn(1, 3, 8, 8)
    # when
    result, pairs = fold_batchnorm(model, x, BOTH_PATHS)
    # then
    assert pairs == 0 and result is model and batch_norms(result) == 1


class SharedNorm(nn.Module):
    """One batch norm after two convolutions: no single convolution can take it."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 4, 1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.a(x)) + self.bn(self.b(x))

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.forward(x)]


def test_a_batch_norm_shared_by_two_convolutions_is_left_alone() -> None:
    torch.manual_seed(0)
    model = with_trained_statistics(SharedNorm()).eval()
    # when
    result, pairs = fold_batchnorm(model, torch.randn(1, 3, 8, 8), BOTH_PATHS)
    # then
    assert pairs == 0 and batch_norms(result) == 1


def test_efficientnet_pads_inside_its_stride_1_convolutions_and_activates_in_place() -> None:
    # given EfficientNet-Lite0 with its real weights, batch norms folded (as it loads)
    backbone = get_backbone("efficientnet_lite0")
    classifier = backbone.build()
    classifier.load_state_dict(torch.load(backbone.weights_path(), weights_only=True))
    probe = torch.randn(1, 3, 64, 64)
    folded, _ = fold_batchnorm(backbone.features(classifier).eval(), probe, BOTH_PATHS)
    # when
    lighter, changed = streamline(folded, probe, BOTH_PATHS)
    # then the 12 symmetric paddings are done by their convolutions (the 5 at stride 2 are
    # one pixel wider on one side, and stay), and every ReLU6 writes over its input
    paddings = [m.static_padding for m in lighter.modules() if hasattr(m, "static_padding")]
    assert sum(isinstance(p, nn.ZeroPad2d) for p in paddings) == 5
    relu6s = sum(isinstance(m, nn.ReLU6) for m in folded.modules())
    assert relu6s > 12 and not any(m.inplace for m in folded.modules() if isinstance(m, nn.ReLU6))
    assert not any(isinstance(m, nn.ReLU6) for m in lighter.modules())
    assert sum(isinstance(m, ClampInPlace) and m.upper == 6 for m in lighter.modules()) == relu6s
    assert changed == 12 + relu6s
    # and the outputs are the same bit for bit, in fp32 and in bf16 on the pipeline's layout
    x = torch.randn(4, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    for precision in (torch.float32, torch.bfloat16):
        with (
            torch.inference_mode(),
            torch.autocast("cpu", precision, enabled=precision != torch.float32),
        ):
            for a, b in zip(folded.feature_maps(x), lighter.feature_maps(x), strict=True):
                assert torch.equal(a, b)
    # and the loaded backbone is the streamlined one
    loaded, _ = backbone.load(download=False)
    assert sum(isinstance(m, ClampInPlace) for m in loaded.modules()) == relu6s


class ActivatesWhatItAddsBack(nn.Module):
    """An activation whose input is read again after it: it must not overwrite that input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU6()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.act(y) + y

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.forward(x)]


def test_an_activation_whose_input_is_read_again_is_left_as_built() -> None:
    torch.manual_seed(0)
    model = ActivatesWhatItAddsBack().eval()
    # when
    result, changed = streamline(model, torch.randn(1, 3, 8, 8), BOTH_PATHS)
    # then
    assert changed == 0 and result is model and not model.act.inplace


def special_values(dtype: torch.dtype) -> torch.Tensor:
    """Every sign and size an activation can take, in the pipeline's layout."""
    info = torch.finfo(dtype)
    edges = [0.0, -0.0, float("inf"), -float("inf"), info.max, -info.max, info.tiny, -info.tiny]
    edges += [info.tiny / 4, -info.tiny / 4, 6.0, -6.0, 5.99, 6.01, 1e-3, -1e-3]  # subnormals
    values = torch.cat([torch.tensor(edges), torch.randn(2 * 8 * 5 * 5 - len(edges)) * 4])
    return values.to(dtype).reshape(2, 8, 5, 5).contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("upper", [None, 6.0])
def test_clamping_bf16_activations_as_integers_gives_relu_exactly(dtype, upper) -> None:
    # given activations of every sign and size, and what torch's own ReLU / ReLU6 make of them
    x = special_values(dtype)
    expected = torch.relu(x.float()) if upper is None else torch.clamp(x.float(), 0, upper)
    # when
    y = ClampInPlace(upper)(x)
    # then the activation is overwritten, in the same layout, with the same numbers
    assert y.data_ptr() == x.data_ptr() and y.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y.float(), expected.to(dtype).float())
    if dtype == torch.bfloat16:  # -0.0 comes out as 0.0 (torch's own clamp keeps it -0.0)
        assert not torch.signbit(y).any()


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_an_overflow_in_fp16_or_fp32_stays_nan_for_the_guard_to_see(dtype) -> None:
    # given an overflowed activation: NaN with its sign bit set, as x86 makes one
    x = torch.full((1, 4, 2, 2), float("nan"), dtype=dtype).neg_()
    # when / then it is NaN after the activation too (extractor.finite_rows computes it again)
    for upper in (None, 6.0):
        assert torch.isnan(ClampInPlace(upper)(x.clone())).all()


def test_resnet_activates_by_clamping_and_gives_the_same_vectors() -> None:
    # given ResNet-18's features, batch norms folded (as the product loads a ResNet)
    torch.manual_seed(0)
    features = ResNetFeatures(with_trained_statistics(models.resnet18())).eval()
    probe = torch.randn(1, 3, 64, 64)
    folded, _ = fold_batchnorm(features, probe, BOTH_PATHS)
    # when
    lighter, changed = streamline(folded, probe, BOTH_PATHS)
    # then every ReLU (built in place) is a ClampInPlace, with the same outputs bit for bit
    relus = sum(isinstance(m, nn.ReLU) for m in folded.modules())
    assert relus == changed == sum(isinstance(m, ClampInPlace) for m in lighter.modules()) > 0
    x = torch.randn(2, 3, 96, 96).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
        for a, b in zip(BOTH_PATHS(folded, x)[1], BOTH_PATHS(lighter, x)[1], strict=True):
            assert torch.equal(a, b)
