"""Channels-last CPU inference: the copy-free instance norm and the rewritten network against the originals."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from electroseg.models.layout import ChannelsLastInstanceNorm, channels_last_network, memory_format_for
from electroseg.models import ModelSpec, build_model, plan_unet

PHASES = ("pore", "cbd", "am")


def _norm(cls, channels: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    norm = cls(channels, affine=True)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.normal_()
    return norm


@pytest.mark.parametrize("cls,shape", [(nn.InstanceNorm3d, (2, 8, 4, 12, 10)),
                                       (nn.InstanceNorm2d, (3, 16, 20, 12))])
def test_channels_last_instance_norm_equals_torch_instance_norm(cls, shape):
    norm = _norm(cls, shape[1])
    generator = torch.Generator().manual_seed(1)
    # per-channel offsets and scales unlike the affine's, so both the statistics and the affine matter
    offset = torch.linspace(-3, 10, shape[1]).view(1, -1, *[1] * (len(shape) - 2))
    x = torch.randn(shape, generator=generator) * torch.linspace(0.2, 4, shape[1]).view_as(offset) + offset
    fmt = memory_format_for(x.dim())
    out = ChannelsLastInstanceNorm(norm)(x.contiguous(memory_format=fmt))
    assert out.is_contiguous(memory_format=fmt)
    # one-pass float32 variance: relative error ~ (mean / std)^2 * 1e-7, here (3 / 0.2)^2 * 1e-7
    torch.testing.assert_close(out, norm(x), atol=2e-4, rtol=1e-4)


def test_channels_last_instance_norm_hand_computed():
    # channel 0: 1, 2, 3, 4 (mean 2.5, biased variance 1.25); channel 1: 10, 10, 10, 14 (mean 11, variance 3)
    norm = nn.InstanceNorm2d(2, affine=True, eps=0.0)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([2.0, 1.0]))
        norm.bias.copy_(torch.tensor([1.0, 0.0]))
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[10.0, 10.0], [10.0, 14.0]]]])
    x = x.contiguous(memory_format=torch.channels_last)
    expected = torch.tensor([[2 * (v - 2.5) / 1.25 ** 0.5 + 1 for v in (1, 2, 3, 4)],
                             [(v - 11) / 3 ** 0.5 for v in (10, 10, 10, 14)]])
    out = ChannelsLastInstanceNorm(norm)(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out.reshape(2, 4), expected)


def test_channels_first_input_falls_back_to_torch():
    norm = _norm(nn.InstanceNorm3d, 4)
    x = torch.randn(2, 4, 3, 5, 6)
    torch.testing.assert_close(ChannelsLastInstanceNorm(norm)(x), norm(x))


def test_refuses_norms_it_does_not_reproduce():
    with pytest.raises(ValueError, match="affine"):
        ChannelsLastInstanceNorm(nn.InstanceNorm3d(4, affine=False))
    with pytest.raises(ValueError, match="affine"):
        ChannelsLastInstanceNorm(nn.InstanceNorm3d(4, affine=True, track_running_stats=True))


def _network(name: str) -> tuple[nn.Module, torch.Tensor]:
    if name == "unet3d":
        voxel, patch, channels, inputs = (0.05, 0.025, 0.025), (16, 32, 32), [8, 16, 32], 1
        x = torch.randn(2, inputs, *patch)
    else:
        voxel, patch, channels, inputs = (0.025, 0.025), (32, 32), [16, 32, 64], 6
        x = torch.randn(3, inputs, *patch)
    plan = plan_unet(voxel, patch, max_levels=len(channels), min_size=4)
    spec = ModelSpec(name=name, kwargs=dict(in_channels=inputs, out_channels=3, channels=channels,
                                            **plan.to_dict()),
                     phases=PHASES, channels=("bse",) if inputs == 1 else ("cbs", "tld"),
                     voxel_size=(0.05, 0.025, 0.025)[-len(patch):], patch_size=patch,
                     context_slices=0 if inputs == 1 else 1)
    torch.manual_seed(0)
    network = build_model(spec).eval()
    with torch.no_grad():  # non-trivial affines, so a swapped weight or bias would show
        for module in network.modules():
            if isinstance(module, (nn.InstanceNorm2d, nn.InstanceNorm3d)):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.3)
    return network, x


@pytest.mark.parametrize("copy_free_norm", [True, False])
@pytest.mark.parametrize("name", ["unet3d", "multichannel2d"])
def test_channels_last_network_gives_the_same_logits_and_leaves_the_original(name, copy_free_norm):
    network, x = _network(name)
    original = copy.deepcopy(network.state_dict())
    with torch.inference_mode():
        expected = network(x)
        rewritten = channels_last_network(network, copy_free_norm=copy_free_norm)
        out = rewritten(x)
    assert out.is_contiguous()
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-4)
    norms = [m for m in rewritten.modules() if isinstance(m, ChannelsLastInstanceNorm)]
    torch_norms = [m for m in rewritten.modules() if isinstance(m, (nn.InstanceNorm2d, nn.InstanceNorm3d))]
    assert (bool(norms), bool(torch_norms)) == (copy_free_norm, not copy_free_norm)
    fmt = torch.channels_last_3d if name == "unet3d" else torch.channels_last
    assert all(p.is_contiguous(memory_format=fmt) for p in rewritten.parameters() if p.dim() == x.dim())
    # the original network is untouched: same modules, same weights, channels-first
    assert not any(isinstance(m, ChannelsLastInstanceNorm) for m in network.modules())
    for key, value in network.state_dict().items():
        assert torch.equal(value, original[key]) and value.is_contiguous()


def test_network_without_convolutions_is_returned_as_is():
    network = nn.Identity()
    assert channels_last_network(network) is network
