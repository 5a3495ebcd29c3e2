import math

import pytest
import torch

from electroseg.models import UNet3D
from electroseg.training.losses import masked_cross_entropy, masked_soft_dice, segmentation_loss


def test_uniform_logits_give_log_k_cross_entropy():
    logits = torch.zeros(1, 3, 2, 2, 2)
    target = torch.tensor([0, 1, 2, 255, 0, 1, 2, 255]).reshape(1, 2, 2, 2)
    weight = (target != 255).float()
    assert masked_cross_entropy(logits, target, weight).item() == pytest.approx(math.log(3), rel=1e-6)


def test_hand_computed_dice():
    # two labelled voxels: truth [0, 1]; perfect confident prediction on voxel 0 only
    logits = torch.tensor([[[100.0, 0.0], [0.0, 0.0]]]).reshape(1, 2, 2)  # (N=1, K=2, X=2)
    target = torch.tensor([[0, 1]])
    weight = torch.ones(1, 2)
    # p(class0) = [1, .5], p(class1) = [0, .5]
    # D0 = 2*1 / (1.5 + 1) = 0.8 ; D1 = 2*0.5 / (0.5 + 1) = 2/3
    expected = 1 - (0.8 + 2 / 3) / 2
    assert masked_soft_dice(logits, target, weight, smooth=0).item() == pytest.approx(expected, rel=1e-5)


def test_loss_ignores_targets_of_unlabelled_voxels():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 6, 6)
    target = torch.randint(0, 3, (2, 4, 6, 6))
    weight = torch.rand(2, 4, 6, 6)
    weight[:, :2] = 0
    changed = target.clone()
    changed[:, :2] = torch.randint(0, 3, (2, 2, 6, 6))
    changed[0, 0] = 255
    before = segmentation_loss(logits, target, weight)
    after = segmentation_loss(logits, changed, weight)
    assert after.item() == pytest.approx(before.item(), abs=1e-7)
    # ...while changing a labelled voxel's target does change it
    changed[:, 2:] = (changed[:, 2:] + 1) % 3
    assert segmentation_loss(logits, changed, weight).item() != pytest.approx(before.item(), abs=1e-3)


def test_weights_scale_voxel_contributions():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 0.0]]])  # (1, K=2, X=2)
    target = torch.tensor([[0, 1]])
    ce = torch.nn.functional.cross_entropy(logits, target, reduction="none")[0]
    weight = torch.tensor([[3.0, 1.0]])
    expected = (3 * ce[0] + ce[1]) / 4
    assert masked_cross_entropy(logits, target, weight).item() == pytest.approx(expected.item(), rel=1e-6)


def test_loss_falls_when_overfitting_one_batch():
    torch.manual_seed(0)
    net = UNet3D(in_channels=1, out_channels=3, channels=(4, 8),
                 strides=((1, 1, 1), (1, 2, 2)), kernel_sizes=((1, 3, 3), (3, 3, 3)))
    target = torch.zeros(1, 4, 16, 16, dtype=torch.long)
    target[:, :, 4:12, 4:12] = 2
    target[:, :, 4:12, 2:4] = 1
    image = target.float().unsqueeze(1) / 2 + 0.1 * torch.randn(1, 1, 4, 16, 16)
    weight = torch.ones(1, 4, 16, 16)
    weight[:, ::2] = 0  # half the slices unlabelled
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-2)
    losses = []
    for _ in range(25):
        optimizer.zero_grad()
        loss = segmentation_loss(net(image), target, weight)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
