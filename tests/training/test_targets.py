import numpy as np
import pytest

from electroseg.errors import InputError
from electroseg.training.targets import boundary_band, cached_pseudo_labels, combine_label_sources

U = 255


def test_dense_beats_hand_beats_pseudo_and_unlabelled_is_ignored():
    pseudo = np.array([[0, 0, 0, 0, 0, 0]], np.uint8)
    hand = np.array([[U, 1, 1, U, U, U]], np.uint8)
    dense = np.array([[U, U, 2, U, U, U]], np.uint8)
    target = combine_label_sources((1, 6), dense=dense, hand=hand, pseudo=pseudo,
                                   weights={"dense": 5, "hand": 3, "pseudo": 0.5}, boundary_ignore=0)
    assert target.labels.tolist() == [[0, 1, 2, 0, 0, 0]]
    assert target.weight.tolist() == [[0.5, 3, 5, 0.5, 0.5, 0.5]]


def test_low_confidence_and_boundary_pseudo_labels_dropped():
    pseudo = np.array([[0, 0, 0, 2, 2, 2, 2]], np.uint8)
    confidence = np.array([[0.1, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]], np.float32)
    target = combine_label_sources((1, 7), pseudo=pseudo, confidence=confidence,
                                   weights={"pseudo": 1}, min_confidence=0.5, boundary_ignore=1)
    # voxel 0: low confidence; voxels 2, 3: at the 0|2 boundary
    assert target.labels.tolist() == [[U, 0, U, U, 2, 2, 2]]
    assert target.labelled_fraction == pytest.approx(4 / 7)


def test_boundary_band_width_two_hand_counted():
    labels = np.zeros((1, 9), np.uint8)
    labels[0, 5:] = 1
    assert np.flatnonzero(boundary_band(labels, width=2)[0]).tolist() == [3, 4, 5, 6]
    assert not boundary_band(labels, width=0).any()


def test_shape_mismatch_is_input_error():
    with pytest.raises(InputError, match=r"hand labels: expected shape \(2, 2\)"):
        combine_label_sources((2, 2), hand=np.zeros((3, 3), np.uint8), weights={})


def test_pseudo_labels_cached_on_disk(tmp_path, monkeypatch):
    calls = []

    class Result:
        def __init__(self, image):
            self.labels = (image > 0.5).astype(np.uint8)
            self.confidence = np.ones(image.shape, np.float32)

    import electroseg.classical as classical

    def fake_segment(image, **options):
        calls.append(options)
        return Result(image)

    monkeypatch.setattr(classical, "segment_volume", fake_segment)
    image = np.linspace(0, 1, 64, dtype=np.float32).reshape(4, 4, 4)
    first = cached_pseudo_labels(image, options={"phases": ["a", "b"]}, cache_dir=tmp_path)
    second = cached_pseudo_labels(image, options={"phases": ["a", "b"]}, cache_dir=tmp_path)
    assert len(calls) == 1 and np.array_equal(first.labels, second.labels)
    cached_pseudo_labels(image, options={"phases": ["b", "a"]}, cache_dir=tmp_path)
    assert len(calls) == 2  # other segmenter options: other cache entry
