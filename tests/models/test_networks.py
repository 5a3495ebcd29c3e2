import pytest
import torch

from electroseg.errors import InputError
from electroseg.models import MultiChannel2D, UNet3D, count_parameters, plan_unet

# shape table: (model class, constructor kwargs, input shape, output shape)
CASES = [
    (UNet3D, dict(in_channels=1, out_channels=3, channels=(4, 8),
                  strides=((1, 1, 1), (1, 2, 2)), kernel_sizes=((1, 3, 3), (3, 3, 3))),
     (2, 1, 16, 16, 16), (2, 3, 16, 16, 16)),
    (UNet3D, dict(in_channels=2, out_channels=2, channels=(4, 8),
                  strides=((1, 1, 1), (2, 2, 2)), kernel_sizes=((3, 3, 3), (3, 3, 3))),
     (1, 2, 16, 16, 16), (1, 2, 16, 16, 16)),
    (UNet3D, dict(in_channels=1, out_channels=3, channels=(4, 8, 8),
                  strides=((1, 1, 1), (1, 2, 2), (2, 2, 2)),
                  kernel_sizes=((1, 3, 3), (3, 3, 3), (3, 3, 3))),
     (1, 1, 8, 16, 16), (1, 3, 8, 16, 16)),
    (MultiChannel2D, dict(in_channels=6, out_channels=3, channels=(4, 8),
                          strides=((1, 1), (2, 2)), kernel_sizes=((3, 3), (3, 3))),
     (3, 6, 16, 16), (3, 3, 16, 16)),
    (MultiChannel2D, dict(in_channels=1, out_channels=4, channels=(8, 8, 8),
                          strides=((1, 1), (2, 2), (2, 2)), kernel_sizes=((3, 3),) * 3),
     (1, 1, 16, 24), (1, 4, 16, 24)),
]


@pytest.mark.parametrize("cls, kwargs, in_shape, out_shape", CASES)
def test_output_shape_table(cls, kwargs, in_shape, out_shape):
    model = cls(**kwargs)
    with torch.no_grad():
        assert tuple(model(torch.rand(in_shape)).shape) == out_shape


def test_planned_unet_divisor_and_parameters():
    plan = plan_unet((0.05, 0.025, 0.025), (16, 32, 32), max_levels=3)
    model = UNet3D(in_channels=1, out_channels=3, channels=(4, 8, 8),
                   strides=plan.strides, kernel_sizes=plan.kernel_sizes)
    assert model.divisor == plan.divisor == (2, 4, 4)
    # first conv of the encoder has a (1, 3, 3) kernel: 1*1*3*3*4 weights
    first = model.net.encoders[0].conv1.conv
    assert tuple(first.weight.shape) == (4, 1, 1, 3, 3)
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())


def test_mismatched_levels_raise_input_error():
    with pytest.raises(InputError, match="one entry per level"):
        UNet3D(in_channels=1, out_channels=3, channels=(4, 8, 16),
               strides=((1, 1, 1), (2, 2, 2)), kernel_sizes=((3, 3, 3), (3, 3, 3)))


def test_tiny_unet_parameter_count_by_hand():
    model = UNet3D(in_channels=1, out_channels=3, channels=(4, 8),
                   strides=((1, 1, 1), (1, 2, 2)), kernel_sizes=((1, 3, 3), (3, 3, 3)))
    encoder0 = 4 * 1 * 9 + 4 * 4 * 9 + 2 * (4 + 4)        # two (1,3,3) convs, two affine norms
    encoder1 = 8 * 4 * 27 + 8 * 8 * 27 + 2 * (8 + 8)       # two 3x3x3 convs
    decoder = 8 * 4 * 4 + 4 * 8 * 9 + 4 * 4 * 9 + 2 * (4 + 4)  # (1,2,2) transposed conv, two convs
    head = 3 * 4 + 3                                        # 1x1x1 conv with bias
    assert count_parameters(model) == encoder0 + encoder1 + decoder + head == 3411
