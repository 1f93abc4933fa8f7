"""One run's processes on a node: the launcher (in process, or N ranks plus TRL's vLLM server), the rank entry
point, the vLLM server's supervision, and the run directory's lock."""
