"""openrs: Hydra-configured GRPO experiments reproducing the Open RS study."""

import os as _os

__version__ = "0.1.0"

# DeepSpeed picks its accelerator on first use and, finding no GPU, prints a warning on stdout (transformers asks
# it whenever a model is saved). On a machine without NVIDIA devices name the CPU accelerator up front; a value
# the user set wins.
if not _os.path.exists("/dev/nvidiactl"):
    _os.environ.setdefault("DS_ACCELERATOR", "cpu")
