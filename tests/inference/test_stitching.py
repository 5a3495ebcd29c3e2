"""Sliding-window stitching is exact: known predictors give what they give on the whole volume."""

import numpy as np
import pytest
import torch

from electroseg.inference import predict_volume
from electroseg.inference.engine import Source, WindowPlan, count_windows, run_2d, run_3d
from electroseg.inference.normalize import ChannelBounds


def _plan(patch, overlap=0.5, batch_size=3, tta=False, autocast=None):
    return WindowPlan(tuple(patch), overlap, batch_size, tta, torch.device("cpu"), autocast)


def _source(volume):
    data = volume if volume.ndim == 4 else volume[None]
    return Source(data, channel_index=range(data.shape[0]), bounds=[ChannelBounds(None, None)] * data.shape[0])


@pytest.mark.parametrize("shape, patch, overlap", [
    ((20, 37, 29), (8, 16, 16), 0.5),   # several rows, uneven last windows
    ((5, 11, 9), (8, 16, 16), 0.25),    # volume smaller than the patch on every axis
    ((16, 16, 16), (8, 16, 16), 0.0),   # no overlap: tiles meet exactly
])
def test_plus_one_predictor_stitches_exactly_in_3d(shape, patch, overlap, kit):
    volume = np.random.default_rng(1).random(shape).astype(np.float32)
    sink = kit.LogitSink(3, shape)
    with torch.inference_mode():
        run_3d(kit.PlusOne(), _source(volume), sink, _plan(patch, overlap))
    np.testing.assert_allclose(sink.logits, kit.plus_one_logits(volume), rtol=1e-6, atol=1e-6)


def test_plus_one_predictor_stitches_exactly_slice_wise(kit):
    volume = np.random.default_rng(2).random((7, 40, 23)).astype(np.float32)
    sink = kit.LogitSink(3, volume.shape)
    with torch.inference_mode():
        run_2d(kit.PlusOne(), _source(volume), sink, _plan((16, 16), 0.5, batch_size=5), context_slices=0)
    np.testing.assert_allclose(sink.logits, kit.plus_one_logits(volume), rtol=1e-6, atol=1e-6)


def test_context_slices_are_detector_major_with_repeated_ends(kit):
    # two detectors, k = 1: channel c * 3 + (j + 1) of slice z is detector c at clip(z + j).
    z = np.arange(4, dtype=np.float32)
    volume = np.stack([np.broadcast_to(z[:, None, None], (4, 8, 8)),
                       np.broadcast_to(10 + z[:, None, None], (4, 8, 8))]).copy()
    sink = kit.LogitSink(6, (4, 8, 8))
    with torch.inference_mode():
        run_2d(kit.Identity(), _source(volume), sink, _plan((8, 8)), context_slices=1)
    got = sink.logits[:, :, 0, 0].T  # (Z, 6)
    expected = [[0, 0, 1, 10, 10, 11], [0, 1, 2, 10, 11, 12], [1, 2, 3, 11, 12, 13], [2, 3, 3, 12, 13, 13]]
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_flip_averaging_leaves_a_pointwise_predictor_unchanged(kit):
    volume = np.random.default_rng(3).random((9, 20, 18)).astype(np.float32)
    sink = kit.LogitSink(3, volume.shape)
    with torch.inference_mode():
        run_3d(kit.PlusOne(), _source(volume), sink, _plan((8, 16, 16), 0.25, tta=True))
    np.testing.assert_allclose(sink.logits, kit.plus_one_logits(volume), rtol=1e-6, atol=1e-6)


class _LeftNeighbour(torch.nn.Module):
    """Not flip-equivariant: logit 0 = value of the voxel on the left (x - 1), zero at the edge."""

    def forward(self, x):
        shifted = torch.nn.functional.pad(x, (1, 0))[..., :-1]
        return torch.cat([shifted, 0.5 * torch.ones_like(x)], dim=1)


def test_flip_averaging_averages_left_and_right_neighbours(kit):
    # x flips turn "left neighbour" into "right neighbour": TTA logit 0 is their mean.
    volume = np.random.default_rng(4).random((1, 8, 8)).astype(np.float32)
    sink = kit.LogitSink(2, volume.shape)
    with torch.inference_mode():
        run_2d(_LeftNeighbour(), _source(volume), sink, _plan((8, 8), tta=True), context_slices=0)
    v = volume[0]
    left = np.pad(v, ((0, 0), (1, 0)))[:, :-1]
    right = np.pad(v, ((0, 0), (0, 1)))[:, 1:]
    np.testing.assert_allclose(sink.logits[0, 0], (left + right) / 2, atol=1e-6)


def test_predict_volume_labels_and_probabilities_of_known_predictor(kit):
    volume = np.random.default_rng(5).random((12, 20, 20)).astype(np.float32)
    pred = predict_volume(kit.PlusOne(), volume, patch_size=(8, 16, 16), precision="fp32", probabilities="float16")
    logits = kit.plus_one_logits(volume)
    np.testing.assert_array_equal(pred.labels, logits.argmax(0))
    expected = torch.softmax(torch.from_numpy(logits), 0).numpy()
    assert pred.probabilities.dtype == np.float16
    np.testing.assert_allclose(pred.probabilities.astype(np.float32), expected, atol=1e-3)
    quantised = predict_volume(kit.PlusOne(), volume, patch_size=(8, 16, 16), precision="fp32", probabilities="uint8")
    np.testing.assert_array_equal(quantised.probabilities, np.round(expected * 255).astype(np.uint8))


def test_bf16_autocast_is_close_to_fp32(kit):
    volume = np.random.default_rng(6).random((8, 16, 16)).astype(np.float32)
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(1, 3, 3, padding=1)
    with torch.inference_mode():
        full = conv(torch.from_numpy(volume)[None, None])[0].numpy()
        low, high = kit.LogitSink(3, volume.shape), kit.LogitSink(3, volume.shape)
        run_3d(conv, _source(volume), low, _plan((8, 16, 16), autocast=torch.bfloat16))
        run_3d(conv, _source(volume), high, _plan((8, 16, 16)))
    np.testing.assert_allclose(high.logits, full, atol=1e-5)
    assert np.abs(low.logits - full).max() > 0  # autocast really ran in bf16
    np.testing.assert_allclose(low.logits, full, atol=0.03)  # bf16 keeps 8 significant bits


def test_window_count_matches_grid():
    plan = _plan((8, 16, 16), 0.5)
    # z starts 0,4,8,12 ; y starts 0,8,16,21 ; x starts 0,8,13
    assert count_windows((20, 37, 29), plan) == 4 * 4 * 3
    assert count_windows((7, 40, 23), _plan((16, 16), 0.5)) == 7 * 4 * 2


def test_2d_image_gives_2d_labels(kit):
    image = np.random.default_rng(7).random((21, 35)).astype(np.float32)
    pred = predict_volume(kit.PlusOne(), image, patch_size=(16, 16), precision="fp32", probabilities="float16")
    assert pred.labels.shape == (21, 35) and pred.probabilities.shape == (3, 21, 35)
    np.testing.assert_array_equal(pred.labels, kit.plus_one_logits(image).argmax(0))


@pytest.mark.parametrize("dtype", [np.uint16, ">u2", np.uint8, np.int16, np.int32, np.float64, bool])
def test_slabs_normalised_on_the_device_equal_the_numpy_route_bit_for_bit(dtype):
    """The GPU route (raw slab copied, normalised as a tensor) run here on the CPU: the same
    float32 values as Source.read, edges replicated in Z and padded in Y/X alike."""
    from electroseg.inference.engine import _slab_tensor

    rng = np.random.default_rng(3)
    data = rng.integers(0, 2 if dtype is bool else 250, size=(3, 6, 9, 7)).astype(dtype)
    bounds = [ChannelBounds(7.3, 181.9), ChannelBounds(5.0, 5.0), ChannelBounds(None, None)]
    source = Source(data, channel_index=[2, 0, 1], bounds=bounds)
    for z0, z1 in ((-2, 3), (2, 6), (4, 9)):
        numpy_route = _slab_tensor(source, z0, z1, (12, 10), "cpu", on_device=False)
        tensor_route = _slab_tensor(source, z0, z1, (12, 10), "cpu", on_device=True)
        assert tensor_route.dtype == torch.float32 and tensor_route.shape == (3, z1 - z0, 12, 10)
        assert torch.equal(tensor_route, numpy_route)
    assert float(numpy_route[0].max()) <= 1.0 and not numpy_route[1].any()  # clipped; hi <= lo: zeros
