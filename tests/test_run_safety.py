"""Nothing is overwritten: one writer per run dir, a finished run stays finished, a full disk loses nothing,
and the run's JSON-lines logs survive a torn last line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from openrs.records import jsonl
from openrs.runtime.run_lock import RunDirLocked, RunLock

REPO = Path(__file__).resolve().parent.parent


def train(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "openrs.train", "experiment=smoke", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes), except those under the ``skip`` names."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part in skip for part in p.relative_to(root).parts)
    }


# --- one writer per run dir ----------------------------------------------------------------------------------


def test_lock_is_exclusive_names_its_holder_and_is_shared_with_children(tmp_path):
    first = RunLock(tmp_path).acquire()
    first.record()
    with pytest.raises(RunDirLocked, match=rf"in use by another run \(host .*, pid {os.getpid()}, since "):
        RunLock(tmp_path).acquire()
    # A child that inherited the lock file keeps the lock after the parent lets go (a launcher's ranks).
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], pass_fds=(first.fd,))
    try:
        first.release()
        with pytest.raises(RunDirLocked):
            RunLock(tmp_path).acquire()
    finally:
        child.kill()
        child.wait()
    RunLock(tmp_path).acquire().release()  # the kernel released it with the last holder


@pytest.mark.slow
def test_second_start_on_a_live_run_fails_fast_and_leaves_it_untouched(tmp_path):
    run_dir = tmp_path / "run"
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openrs.train",
            "experiment=smoke",
            "grpo.max_steps=100000",
            "grpo.save_steps=1000",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not (run_dir / "metrics.jsonl").exists():  # training has begun: the lock is held and recorded
            assert first.poll() is None and time.monotonic() < deadline, "the first run did not start training"
            time.sleep(0.5)
        starts_before = (run_dir / "starts.jsonl").read_text()
        provenance_before = (run_dir / "provenance.json").read_bytes()
        start = time.monotonic()
        second = train(f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'second'}", timeout=300)
        took = time.monotonic() - start
        assert second.returncode != 0
        assert f"pid {first.pid}" in second.stderr and "in use by another run" in second.stderr, second.stderr[-2000:]
        assert took < 60, f"the refusal took {took:.0f} s"
        assert (run_dir / "starts.jsonl").read_text() == starts_before  # the second start wrote nothing
        assert (run_dir / "provenance.json").read_bytes() == provenance_before
        assert first.poll() is None, "the first run was disturbed"
    finally:
        first.kill()
        first.wait()


# --- a finished run stays finished ---------------------------------------------------------------------------


@pytest.mark.slow
def test_finished_run_started_again_changes_nothing_and_more_steps_continue_it(tmp_path):
    run_dir = tmp_path / "run"
    done = train("grpo.max_steps=4", "grpo.save_steps=2", f"hydra.run.dir={run_dir}")
    assert done.returncode == 0, done.stderr[-3000:]
    before = snapshot(run_dir)

    again = train("grpo.max_steps=4", "grpo.save_steps=2", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'again'}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "is complete (step 4 of 4): nothing to do" in again.stdout
    assert snapshot(run_dir) == before, "a finished run was modified by starting it again"

    # The same command in the same dir: Hydra rewrites its own files (.hydra/, the job log); nothing else moves.
    same = train("grpo.max_steps=4", "grpo.save_steps=2", f"hydra.run.dir={run_dir}")
    assert same.returncode == 0 and "is complete" in same.stdout
    hydra_own = (".hydra", "train.log")
    assert snapshot(run_dir, hydra_own) == {k: v for k, v in before.items() if not k.startswith(hydra_own)}

    more = train("grpo.max_steps=6", "grpo.save_steps=2", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'more'}")
    assert more.returncode == 0, more.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 6 and summary["resumed_from"].endswith("checkpoint-4")
    assert (run_dir / "checkpoints" / "checkpoint-6" / "COMPLETE").exists()


# --- a full disk loses nothing -------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 24 MB tmpfs made by the test (root only; skipped with the reason elsewhere)."""
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({result.stderr.strip() or 'mount failed'}; needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(mount: Path, leave: int) -> Path:
    """A filler file that leaves about ``leave`` bytes free on ``mount``."""
    filler = mount / "filler"
    free = shutil.disk_usage(mount).free
    with open(filler, "wb") as fh:
        fh.truncate(0)
        fh.write(b"\0" * max(0, free - leave))
    return filler


@pytest.mark.slow
@pytest.mark.parametrize("when", ["refused before writing", "space runs out mid-save"])
def test_full_disk_save_fails_cleanly_and_the_run_resumes_once_space_is_back(small_disk, when, monkeypatch):
    from openrs.config import compose, to_run_config
    from openrs.training import checkpoints, disk
    from openrs.training.loop import run_training

    run_dir = small_disk / "run"

    def cfg(steps: int):
        return to_run_config(
            compose(["experiment=smoke", f"grpo.max_steps={steps}", "grpo.save_steps=2", "diagnostics.text=false"])
        )

    run_training(cfg(2), run_dir)
    ckpt2 = run_dir / "checkpoints" / "checkpoint-2"
    kept = snapshot(ckpt2)
    size = disk.tree_bytes(ckpt2)
    if when == "refused before writing":
        filler = fill(small_disk, leave=size // 2)
        expected = r"not enough disk space for .*checkpoint-4: about .* needed, .* free; free some space .* resumes from .*checkpoint-2"
    else:
        # No check before the save, as if another job filled the disk between the check and the write.
        monkeypatch.setattr(disk.DiskSpaceCallback, "on_step_end", lambda self, *a, **k: None)
        filler = fill(small_disk, leave=size // 2)
        expected = r"no space left on the disk of .* at step 4; checkpoint-4 was cut short and removed; .* resumes from .*checkpoint-2"
    with pytest.raises(disk.DiskFullError, match=expected):
        run_training(cfg(4), run_dir)
    assert snapshot(ckpt2) == kept, "the newest complete checkpoint changed"
    assert not (run_dir / "checkpoints" / "checkpoint-4").exists()
    assert checkpoints.latest_complete_checkpoint(run_dir / "checkpoints") == ckpt2

    filler.unlink()
    monkeypatch.undo()
    summary = run_training(cfg(4), run_dir)
    assert summary["resumed_from"].endswith("checkpoint-2") and summary["global_step"] == 4


# --- torn JSON lines -----------------------------------------------------------------------------------------


def test_torn_last_line_is_skipped_and_the_next_append_starts_a_new_line(tmp_path, caplog):
    from openrs.records.metrics_log import read_metrics

    path = tmp_path / "metrics.jsonl"
    jsonl.append(path, {"step": 1, "reward": 0.5})
    with open(path, "a") as fh:
        fh.write('{"step": 2, "rew')  # a kill mid-write
    with caplog.at_level("WARNING"):
        assert [r["step"] for r in read_metrics(tmp_path)] == [1]
    assert "skipped 1 line" in caplog.text
    jsonl.append(path, {"step": 2, "reward": 0.7})  # the resumed run logs step 2 again
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]
    assert path.read_text().splitlines()[-1] == '{"step": 2, "reward": 0.7}'
