"""electroseg.analysis is a leaf: importing it must not load the deep-learning stack."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "lightning", "pytorch_lightning", "hydra", "omegaconf", "monai")


def test_import_does_not_load_heavy_frameworks():
    code = ("import sys, electroseg.analysis, electroseg.analysis.metrics; "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_package_exports_every_analysis_module():
    import electroseg.analysis as analysis

    for name in ("analyze_labels", "write_analysis", "volume_fractions", "pba_profile",
                 "particle_table", "interface_areas", "electronic_connectivity",
                 "particle_channel_stats", "subblock_metrics", "compare_samples",
                 "tortuosity_factor"):
        assert callable(getattr(analysis, name)), name
    assert set(analysis.__all__) <= set(dir(analysis))
