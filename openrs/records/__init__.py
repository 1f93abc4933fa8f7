"""What a run writes and a person reads: the run directory's layout (``run_dir.py``), files written whole
(``atomic.py``, ``jsonl.py``), provenance, metrics, the summary, diagnostics, TensorBoard records, the console."""
