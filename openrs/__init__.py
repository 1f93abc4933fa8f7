"""openrs: Hydra-configured GRPO experiments reproducing the Open RS study."""

__version__ = "0.1.0"
