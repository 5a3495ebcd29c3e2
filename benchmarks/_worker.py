"""Run one benchmark case in a fresh subprocess and read back its JSON result.

Each case gets its own process so that its peak resident memory (``ru_maxrss``) is its own. The
worker is ``<script> --worker ARGS...`` and prints its result as JSON on its last stdout line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run_worker(script: str | Path, *args: object) -> dict:
    """``python <script> --worker *args``; its last stdout line parsed as JSON.

    A failing worker stops the benchmark with its command and the end of its stderr.
    """
    cmd = [sys.executable, str(script), "--worker", *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{Path(script).name} --worker {' '.join(map(str, args))} failed:\n"
                         f"{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
