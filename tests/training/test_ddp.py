"""trainer=ddp: two CPU processes (gloo) train the real composed config in lock-step."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from omegaconf import OmegaConf

from electroseg.synthetic.samples import prepare_synthetic
from electroseg.config import compose_command

# Lightning's ddp strategy re-runs the launching script once per extra device, so the run
# happens in a script of its own, not inside pytest. Each rank reports from on_train_end.
SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from omegaconf import OmegaConf
    from electroseg.training import SegmentationModule, train

    def report(self):
        checksum = float(sum(p.detach().double().sum() for p in self.net.parameters()))
        Path(sys.argv[2], f"rank{self.global_rank}.json").write_text(json.dumps({
            "rank": self.global_rank, "world_size": self.trainer.world_size,
            "strategy": type(self.trainer.strategy).__name__, "step": self.global_step,
            "checksum": checksum}))

    SegmentationModule.on_train_end = report
    train(OmegaConf.load(sys.argv[1]))
""")


def test_ddp_config_composes():
    cfg = compose_command("train", ["trainer=ddp", "out=unused"])
    assert cfg.trainer.strategy == "ddp"
    assert cfg.trainer.accelerator == "auto" and cfg.trainer.num_nodes == 1
    assert cfg.trainer._target_ == "lightning.Trainer"


@pytest.mark.slow
def test_two_process_ddp_fast_dev_run_on_cpu(tiny_cache, tmp_path):
    cfg = compose_command("train", [
        "data=nmc_fibsem", "data.synthetic.preset=tiny", "model=unet3d_tiny", "trainer=ddp",
        "trainer.accelerator=cpu", "trainer.devices=2", "+trainer.fast_dev_run=true",
        "trainer.precision=32-true",  # bf16 autocast of 3-D convolutions is slow on CPU
        "trainer.enable_progress_bar=false", "loader.samples_per_epoch=8", "loader.val_patches=2",
        f"out={tmp_path / 'run'}", f"cache_dir={tiny_cache}"])
    prepare_synthetic(cfg)
    OmegaConf.save(cfg, tmp_path / "cfg.yaml")
    (tmp_path / "run_ddp.py").write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(tmp_path / "run_ddp.py"), str(tmp_path / "cfg.yaml"),
                           str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert all(r["world_size"] == 2 and r["strategy"] == "DDPStrategy" for r in ranks)
    assert all(r["step"] == 1 for r in ranks)
    # Each rank saw different patches; identical weights after the step prove the all-reduce.
    assert ranks[0]["checksum"] == ranks[1]["checksum"]
