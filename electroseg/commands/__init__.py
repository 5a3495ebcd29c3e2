"""Command adapters: one module per `electroseg <command>`.

Each module defines ``HELP`` (one line) and ``run(cfg: DictConfig) -> int``: it turns the composed
Hydra config into explicit arguments of one library function, calls it and returns an exit status.
"""
