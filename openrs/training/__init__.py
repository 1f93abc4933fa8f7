"""One training rank: TRL's GRPOTrainer assembled for a run (``trainer.py``, ``grpo_config.py``), trained top to
bottom (``loop.py``) with its checkpoint, resume, disk and preemption callbacks; the miniature's SFT warm start
(``warmstart.py``)."""
