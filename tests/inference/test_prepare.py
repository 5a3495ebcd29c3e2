"""The network the engine runs on the CPU (channels-last, traced and frozen) against the eager network."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from electroseg.inference.engine import prepare_network
from electroseg.models import build_model


@pytest.mark.parametrize("name,shape", [("unet3d", (2, 1, 8, 16, 16)), ("multichannel2d", (3, 3, 16, 16))])
def test_prepared_cpu_network_matches_eager_network(name, shape, kit):
    spec = kit.tiny_spec(name=name, context_slices=0 if name == "unet3d" else 1,
                         patch_size=shape[2:])
    torch.manual_seed(0)
    network = build_model(spec).eval()
    with torch.no_grad():  # non-trivial norm affines, so a swapped weight or bias would show
        for module in network.modules():
            if isinstance(module, (nn.InstanceNorm2d, nn.InstanceNorm3d)):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.3)
    x = torch.randn(shape)
    with torch.inference_mode():
        expected = network(x)
        prepared = prepare_network(network, torch.device("cpu"))
        torch.testing.assert_close(prepared(x), expected, atol=1e-4, rtol=1e-4)  # fp32, frozen graph
        assert prepared(x).is_contiguous()
    prepared = prepare_network(network, torch.device("cpu"))
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = prepared(x).float()
    # bf16 autocast keeps ~3 significant digits per layer: logits close, labels nearly all equal
    assert (bf16 - expected).abs().max() < 0.1 * expected.abs().max()
    assert (bf16.argmax(1) == expected.argmax(1)).float().mean() > 0.97
