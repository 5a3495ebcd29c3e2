"""electroseg's DynUNet blocks against MONAI's: the same names, starting weights and outputs."""

from __future__ import annotations

import pytest
import torch

from electroseg.models.blocks import BasicBlock, OutBlock, UpBlock

monai_blocks = pytest.importorskip("monai.networks.blocks")

CASES = [  # spatial dims, kernel, stride, norm
    (3, (1, 3, 3), (1, 2, 2), ("BATCH", {"affine": True})),
    (3, (3, 3, 3), (2, 2, 2), ("INSTANCE", {"affine": True})),
    (2, (3, 3), (2, 2), ("BATCH", {"affine": True})),
    (2, (3, 3), (1, 1), ("INSTANCE", {"affine": True})),
]


def _pair(make_ours, make_monai, seed=0):
    torch.manual_seed(seed)
    ours = make_ours()
    torch.manual_seed(seed)
    theirs = make_monai()
    return ours, theirs


@pytest.mark.parametrize("dims, kernel, stride, norm", CASES)
def test_blocks_equal_monai_blocks(dims, kernel, stride, norm):
    args = dict(kernel_size=kernel, stride=stride, norm_name=norm)
    up_args = dict(kernel_size=kernel, stride=stride, upsample_kernel_size=stride, norm_name=norm)
    pairs = [
        _pair(lambda: BasicBlock(dims, 3, 8, **args), lambda: monai_blocks.UnetBasicBlock(dims, 3, 8, **args)),
        _pair(lambda: UpBlock(dims, 8, 4, **up_args), lambda: monai_blocks.UnetUpBlock(dims, 8, 4, **up_args)),
        _pair(lambda: OutBlock(dims, 8, 3), lambda: monai_blocks.UnetOutBlock(dims, 8, 3)),
    ]
    size = (8, 16, 16)[-dims:]
    low = tuple(s // t for s, t in zip(size, stride))
    inputs = [(torch.randn(2, 3, *size),), (torch.randn(2, 8, *low), torch.randn(2, 4, *size)),
              (torch.randn(2, 8, *size),)]
    for (ours, theirs), x in zip(pairs, inputs):
        mine, other = ours.state_dict(), theirs.state_dict()
        assert list(mine) == list(other)  # a checkpoint loads into either
        for key in mine:  # built under one seed: the same starting weights
            torch.testing.assert_close(mine[key], other[key], rtol=0, atol=0)
        for mode in (True, False):
            ours.train(mode), theirs.train(mode)
            torch.testing.assert_close(ours(*[t.clone() for t in x]), theirs(*[t.clone() for t in x]),
                                       rtol=0, atol=0)
