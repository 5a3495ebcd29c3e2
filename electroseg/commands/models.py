"""``electroseg models``: the pretrained electrode models shipped with the package."""

from __future__ import annotations

import json

from omegaconf import DictConfig

HELP = "list the pretrained models shipped with electroseg (use them as checkpoint=pretrained:NAME)"


def run(cfg: DictConfig) -> int:
    from electroseg.models.pretrained import available, card_path

    models = available()
    if cfg.json:
        print(json.dumps(models, indent=2))
        return 0
    if not models:
        print("no pretrained model ships with this installation")
        return 0
    for name, entry in models.items():
        print(f"pretrained:{name}")
        print(f"  phases {entry['phases']}, channels {entry['channels']}, {entry['network']}, "
              f"{entry['size_bytes'] / 1e6:.1f} MB, sha256 {entry['sha256'][:16]}...")
        print(f"  {entry['summary']}")
        if entry.get("feature_length_px") is not None:
            print(f"  training feature size {entry['feature_length_px']} px: scale=auto shrinks inputs with larger "
                  f"features before predicting")
        if entry.get("low_confidence_warning") is not None:
            print(f"  predict warns from {100 * entry['low_confidence_warning']:.0f} % low-confidence voxels: "
                  "where its predictions were mostly poor on images with truth")
        print(f"  model card: {card_path(name)}")
    print("zero-shot:  electroseg predict checkpoint=pretrained:NAME inputs=IMAGE out=DIR")
    print("fine-tune:  electroseg train data=MY_DATA init=pretrained:NAME out=DIR")
    return 0
