"""The composed config of each preset, as kept in ``tests/fixtures/presets/<preset>.json``.

``tests/test_defaults.py`` fails when composing a preset gives anything else. After an intended change of a
value in ``conf/`` (or of a schema field), regenerate the snapshots with one command and review them as a diff:

    make snapshots        # = .venv/bin/python tests/preset_snapshots.py
    git diff tests/fixtures/presets
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "presets"
PRESETS = ("rs1", "rs2", "rs3", "smoke", "mini", "gpu_check")


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return getattr(x, "value", x)


def snapshot(preset: str) -> dict[str, Any]:
    """``experiment=<preset>`` composed, typed and checked, as plain JSON-ready data."""
    from openrs.config import compose, to_run_config

    return _plain(dataclasses.asdict(to_run_config(compose([f"experiment={preset}"]))))


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def main() -> int:
    for preset in PRESETS:
        path = FIXTURES / f"{preset}.json"
        text = render(snapshot(preset))
        changed = not path.is_file() or path.read_text() != text
        path.write_text(text)
        print(f"{'updated' if changed else 'same   '} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
