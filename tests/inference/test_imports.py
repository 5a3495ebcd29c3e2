"""electroseg.inference starts without the training stack's imports."""

from __future__ import annotations

import subprocess
import sys


def test_inference_runs_without_importing_monai():
    # `import monai` loads all of MONAI's submodules (seconds of start-up): loading a shipped
    # checkpoint and predicting must not need it (electroseg.models.blocks, windows.importance_map)
    code = ("import sys, numpy as np\n"
            "from electroseg.inference import load_checkpoint, predict_volume\n"
            "from electroseg.models.pretrained import resolve_checkpoint\n"
            "model = load_checkpoint(resolve_checkpoint('pretrained:electrode-3phase'))\n"
            "predict_volume(model, np.random.default_rng(0).random((8, 32, 32)).astype(np.float32))\n"
            "print('monai' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout + out.stderr
