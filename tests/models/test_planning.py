import pytest

from electroseg.errors import InputError
from electroseg.models import plan_unet


def test_fibsem_50_25_25_downsamples_in_plane_first():
    plan = plan_unet((0.05, 0.025, 0.025), (32, 128, 128), max_levels=5)
    assert plan.strides[0] == (1, 1, 1)
    assert plan.kernel_sizes[0] == (1, 3, 3)
    assert plan.strides[1] == (1, 2, 2)
    # after one in-plane halving the grid is isotropic (50 nm): full 3D from then on
    assert plan.kernel_sizes[1] == (3, 3, 3)
    assert plan.strides[2] == (2, 2, 2)


def test_isotropic_plan_stops_at_min_size():
    # 64 -> 32 -> 16 -> 8 -> 4: four halvings keep every axis >= min_size 4
    plan = plan_unet((1.0, 1.0, 1.0), (64, 64, 64), max_levels=10, min_size=4)
    assert plan.strides == ((1, 1, 1),) + ((2, 2, 2),) * 4
    assert plan.kernel_sizes == ((3, 3, 3),) * 5
    assert plan.divisor == (16, 16, 16)


def test_thin_axis_stops_pooling_while_others_continue():
    # z only 8 voxels: pooled once (8 -> 4), then only y, x
    plan = plan_unet((1.0, 1.0, 1.0), (8, 64, 64), max_levels=4, min_size=4)
    assert plan.strides == ((1, 1, 1), (2, 2, 2), (1, 2, 2), (1, 2, 2))


def test_strongly_anisotropic_keeps_z_kernel_one_until_within_factor_two():
    # z spacing 4x: in-plane halved twice before z joins
    plan = plan_unet((0.1, 0.025, 0.025), (32, 128, 128), max_levels=4)
    assert plan.kernel_sizes[:2] == ((1, 3, 3), (1, 3, 3))
    assert plan.strides[1:3] == ((1, 2, 2), (1, 2, 2))
    assert plan.kernel_sizes[2] == (3, 3, 3)


def test_2d_plan_and_level_limit():
    plan = plan_unet((0.025, 0.025), (256, 256), max_levels=3)
    assert plan.strides == ((1, 1), (2, 2), (2, 2))
    assert plan.num_levels == 3


@pytest.mark.parametrize(
    "voxel_size, patch_size", [((1.0, 1.0), (16, 16, 16)), ((0.0, 1.0, 1.0), (8, 8, 8))]
)
def test_bad_arguments_raise_input_error(voxel_size, patch_size):
    with pytest.raises(InputError, match="plan_unet"):
        plan_unet(voxel_size, patch_size)
