"""Training problems: loaded from the hub or a local file, or generated offline (arithmetic, the miniature's
a+b*c task), as a ``datasets.Dataset`` with a chat ``prompt`` and a gold ``solution``."""

from openrs.data.arithmetic import generate_arithmetic
from openrs.data.problems import LOCAL_FORMATS, drop_long_prompts, load_problems, make_prompt
from openrs.errors import DatasetError
