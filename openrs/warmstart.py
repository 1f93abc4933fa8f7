"""``python -m openrs.warmstart experiment=mini [overrides]``: build (or find) a run's warm start ahead, print its dir.

The builder is openrs.training.warmstart; a run builds the same warm start itself before training, so this only
moves the wait (a few minutes on a CPU) ahead, or onto another machine sharing the cache ($OPENRS_CACHE).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> Path:
    from openrs.config import compose, to_run_config
    from openrs.training.warmstart import build_warm_start

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = to_run_config(compose(list(sys.argv[1:] if argv is None else argv)))
    if cfg.model.warm_start is None:
        raise SystemExit("this config has no model.warm_start (try experiment=mini or model=mini)")
    path = build_warm_start(cfg.model)
    print(path, flush=True)
    return path


if __name__ == "__main__":
    main()
