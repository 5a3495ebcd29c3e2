"""The quality record of one prediction: low-confidence shares against a direct count."""

from __future__ import annotations

import numpy as np

from electroseg.inference.qa import LOW_CONFIDENCE, low_confidence, normalized_entropy


def test_low_confidence_matches_a_direct_count_in_float16_and_float32():
    rng = np.random.default_rng(3)
    p = rng.dirichlet([0.4, 0.4, 0.4], size=(6, 20, 30)).transpose(3, 0, 1, 2).astype(np.float32)
    labels = p.argmax(0).astype(np.uint8)
    labels[0, 0, :5] = 1  # and a phase that is absent below
    entropy16 = normalized_entropy(p)
    entropy16[0, 0, 0] = np.float16(LOW_CONFIDENCE)  # the threshold itself counts as low confidence
    for entropy in (entropy16, entropy16.astype(np.float32)):
        found = low_confidence(labels, entropy, ["pore", "cbd", "am", "absent"])
        low = entropy.astype(np.float64) >= np.float64(np.float16(LOW_CONFIDENCE))
        assert found["all"] == low.mean()
        for i, phase in enumerate(["pore", "cbd", "am"]):
            assert abs(found["per_phase"][phase] - low[labels == i].mean()) < 1e-12
        assert found["per_phase"]["absent"] is None
