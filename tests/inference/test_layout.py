"""prepare_network: narrow 3-D convolutions run channels-last on CPU, with unchanged results."""

import torch
from torch import nn

from electroseg.inference.engine import _ChannelsLastConv, prepare_network
from electroseg.models import ModelSpec, build_model


def _unet(channels):
    kwargs = dict(in_channels=1, out_channels=3, channels=channels, strides=[[1, 1, 1], [1, 2, 2], [2, 2, 2]],
                  kernel_sizes=[[1, 3, 3], [3, 3, 3], [3, 3, 3]])
    spec = ModelSpec(name="unet3d", kwargs=kwargs, phases=("pore", "cbd", "am"), channels=("bse",),
                     voxel_size=(0.05, 0.025, 0.025), patch_size=(8, 16, 16))
    torch.manual_seed(0)
    return build_model(spec).eval()


def test_narrow_convolutions_are_wrapped_on_a_copy_and_give_the_same_logits():
    net = _unet([8, 16, 32])
    fast = prepare_network(net, torch.device("cpu"))
    wrapped = [m for m in fast.modules() if isinstance(m, _ChannelsLastConv)]
    assert wrapped and all(max(w.conv.in_channels, w.conv.out_channels) <= 16 for w in wrapped)
    wide = [m for m in fast.modules() if type(m) is nn.Conv3d and m.out_channels == 32]
    assert wide, "convolutions with more than 16 channels stay as they were"
    assert not any(isinstance(m, _ChannelsLastConv) for m in net.modules()), "the caller's module is untouched"
    x = torch.rand(2, 1, 8, 16, 16)
    with torch.inference_mode():
        expected, got = net(x), fast(x)
    assert got.is_contiguous()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_2d_and_wide_networks_are_returned_as_they_are():
    net = _unet([32, 64, 128])
    assert prepare_network(net, torch.device("cpu")) is net
    conv2d = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1))
    assert prepare_network(conv2d, torch.device("cpu")) is conv2d
