"""Window grids, device and precision choice."""

import pytest
import torch

from electroseg.errors import InputError
from electroseg.inference.windows import choose_device, importance_map, resolve_precision, window_starts


@pytest.mark.parametrize("size, patch, overlap, expected", [
    (10, 4, 0.5, [0, 2, 4, 6]),
    (10, 4, 0.0, [0, 4, 6]),        # last window flush with the end
    (4, 4, 0.25, [0]),
    (37, 16, 0.5, [0, 8, 16, 21]),
    (5, 4, 0.9, [0, 1]),            # stride never below 1
])
def test_window_starts_hand_worked(size, patch, overlap, expected):
    assert window_starts(size, patch, overlap) == expected


def test_window_shorter_axis_must_be_padded_first():
    with pytest.raises(ValueError, match="shorter than the patch"):
        window_starts(3, 4, 0.5)


def test_importance_map_is_a_positive_gaussian_peaked_at_the_centre():
    weights = importance_map((8, 16, 16), device=torch.device("cpu"))
    assert weights.shape == (8, 16, 16) and weights.dtype == torch.float32
    assert weights.min() > 0
    centre = weights[3:5, 7:9, 7:9].min()
    assert weights.max() == pytest.approx(float(centre)) and weights[0, 0, 0] < centre


def test_device_and_precision_choice():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert choose_device(None).type == expected and choose_device("auto").type == expected
    assert choose_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            choose_device("cuda")
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16
    assert resolve_precision("auto", torch.device("cuda")) is None  # float32: faster there (docstring)
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="precision: expected one of"):
        resolve_precision("int8", cpu)


@pytest.mark.parametrize("kind, cpu, cuda", [("unet3d", 2, 32), ("multichannel2d", 8, 128)])
def test_default_batch_is_larger_on_cuda_and_an_explicit_one_wins(kind, cpu, cuda, monkeypatch):
    from electroseg.inference import engine
    from electroseg.inference.inputs import Setup

    setup = Setup(network=torch.nn.Identity(), kind=kind, patch_size=(8, 8), context_slices=0,
                  channels=("bse",), phases=("pore", "am"), normalization={})
    options = dict(overlap=0.25, tta=False, device=None, precision="auto")
    monkeypatch.setattr(engine, "choose_device", lambda device: torch.device("cpu"))
    assert engine.plan_windows(setup, batch_size=None, **options).batch_size == cpu
    monkeypatch.setattr(engine, "choose_device", lambda device: torch.device("cuda"))
    plan = engine.plan_windows(setup, batch_size=None, **options)
    assert plan.batch_size == cuda and plan.autocast_dtype is None  # fp32 on CUDA
    assert engine.plan_windows(setup, batch_size=5, **options).batch_size == 5
    with pytest.raises(InputError, match="batch_size"):
        engine.plan_windows(setup, batch_size=0, **options)


def test_importance_map_equals_monai():
    import pytest
    import torch

    from electroseg.inference.windows import importance_map

    utils = pytest.importorskip("monai.data.utils")
    for patch in [(16, 96, 96), (1, 7, 5), (64, 64), (8, 1, 33)]:
        expected = utils.compute_importance_map(patch, mode="gaussian", sigma_scale=0.125,
                                                device="cpu", dtype=torch.float32)
        torch.testing.assert_close(importance_map(patch, device=torch.device("cpu")), expected,
                                   rtol=0, atol=0)


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_on_a_cpu_with_bf16_instructions(monkeypatch, native):
    import electroseg.inference.windows as windows
    from electroseg.training.train import trainer_precision

    monkeypatch.setattr(windows, "cpu_has_bf16", lambda: native)
    # without the instructions torch emulates bf16: twice as slow as float32 (docstring)
    assert resolve_precision("auto", torch.device("cpu")) is (torch.bfloat16 if native else None)
    assert trainer_precision("auto", "cpu") == ("bf16-mixed" if native else "32-true")
    assert trainer_precision("16-mixed", "cpu") == "16-mixed"  # anything else is Lightning's
    assert resolve_precision("bf16", torch.device("cpu")) is torch.bfloat16  # asked for: given


def test_cpu_bf16_probe_agrees_with_torch():
    from electroseg.inference.windows import cpu_has_bf16

    assert cpu_has_bf16() == (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
