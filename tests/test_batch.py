"""`fixative batch` without Ray: manifest, planning, retries, resume, Ctrl-C, and real protection.

The scheduler tests use a fake executor (no model, milliseconds); the rest protect real 48 px
crops of paintings with TAEF2 from ../shared in fast quality with 2 steps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fixative.batch.manifest import DONE, FAILED, INTERRUPTED, RETRIED, Manifest, read_records
from fixative.batch.runner import BatchRunner, Event
from fixative.batch.work import JobSpec, WorkItem
from fixative.commands.batch import collect_inputs
from fixative.errors import BadOptions, OutputError
from fixative.imageio import default_output_path
from tests.conftest import MODELS, REPO, painting

FAST = {"models": ["taef2"], "quality": "fast", "steps": 2, "target_style": "ink-hatching", "device": "cpu"}
CLI_FAST = ["--models", "taef2", "--quality", "fast", "--steps", "2", "--target-style", "ink-hatching",
            "--device", "cpu", "--cpus-per-worker", "1"]
"""--cpus-per-worker 1: on a busy machine two torch threads per process are many times slower than one."""
PAINTINGS = ["starry_night_van_gogh_1889.jpg", "great_wave_hokusai_1831.jpg", "the_scream_munch_1893.jpg",
             "udnie_picabia_1913.jpg", "woman_with_a_hat_matisse_1905.jpg", "shipwreck_turner_1805.jpg"]


def write_paintings(folder: Path, count: int, size: int = 48) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"p{i:02d}.png"
        Image.fromarray(painting(PAINTINGS[i % len(PAINTINGS)], size, box=(0.2 + 0.1 * (i // 6), 0.4))).save(path)
        paths.append(path)
    return paths


def write_corrupt(folder: Path, name: str = "zz_corrupt.png") -> Path:
    path = folder / name
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"this is not image data" * 4)
    return path


# -- manifest ---------------------------------------------------------------------------------

def test_manifest_survives_a_torn_line_and_folds_states(tmp_path):
    with Manifest.open(tmp_path) as manifest:
        manifest.append({"input": "/a.png", "fingerprint": "f1", "status": FAILED, "error": {"code": "x"}})
        manifest.append({"input": "/a.png", "fingerprint": "f1", "status": FAILED, "error": {"code": "y"}})
        manifest.append({"input": "/b.png", "fingerprint": "f1", "status": DONE, "output": "/o/b.png"})
        manifest.append({"input": "/b.png", "fingerprint": "f2", "status": RETRIED})
    path = tmp_path / "fixative-batch.jsonl"
    with open(path, "ab") as fh:  # what a kill -9 in the middle of a write would leave
        fh.write(b'{"input": "/c.png", "status": "do')
    with Manifest.open(tmp_path) as manifest:
        assert manifest.repaired_bytes > 0
        a = manifest.state("/a.png", "f1")
        assert (a.status, a.failures, a.last_error) == (FAILED, 2, {"code": "y"})
        assert manifest.state("/b.png", "f1").status == DONE
        assert manifest.state("/b.png", "f2").status is None  # other options: not done
        assert manifest.state("/c.png", "f1").records == 0
    assert path.read_bytes().endswith(b"\n")
    assert [r["input"] for r in read_records(path)] == ["/a.png", "/a.png", "/b.png", "/b.png"]


def test_a_second_batch_into_the_same_folder_is_refused(tmp_path):
    with Manifest.open(tmp_path):
        with pytest.raises(OutputError, match="another `fixative batch`"):
            Manifest.open(tmp_path)
    Manifest.open(tmp_path).close()  # free again once the first one closed


def test_list_files_folders_and_duplicates(tmp_path):
    images = tmp_path / "art"
    images.mkdir()
    for name in ("a.png", "b.jpg", "c.protected.png", "notes.md"):
        (images / name).write_bytes(b"x")
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "d.webp").write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text("# portfolio\n\nart/a.png\n  more  \n" + str(images / "a.png") + "\n")
    found = collect_inputs([str(listing), str(images)])
    assert [p.name for p in found] == ["a.png", "d.webp", "b.jpg"]
    with pytest.raises(BadOptions, match="no such folder"):
        collect_inputs([str(tmp_path / "missing-folder")])


# -- the scheduler, with a fake executor --------------------------------------------------------

class FakeExecutor:
    """Answers instantly: files named in ``fail`` fail, ``lose`` maps a name to how many times the
    worker dies holding it; everything else is 'protected' into its own bytes reversed."""

    description = "fake"

    def __init__(self, fail=(), lose=None, slots=2):
        self.fail, self.lose, self.slots = set(fail), dict(lose or {}), slots
        self.stop = threading.Event()
        self.queue: list[tuple[WorkItem, bytes]] = []
        self.submitted: list[str] = []

    def start(self, spec):
        pass

    def free_slots(self):
        return self.slots - len(self.queue)

    def in_flight(self):
        return len(self.queue)

    def submit(self, item, data):
        self.submitted.append(item.source.name)
        self.queue.append((item, data))

    def poll(self, timeout):
        events = []
        for item, data in self.queue:
            name = item.source.name
            if self.lose.get(name, 0) > 0:
                self.lose[name] -= 1
                events.append(Event(item, None, lost_reason="ActorDiedError: killed"))
            elif name in self.fail:
                events.append(Event(item, {"status": "failed", "error": {"code": "bad_image", "message": name},
                                           "seconds": 0.0}))
            else:
                events.append(Event(item, {"status": "done", "data": data[::-1], "seconds": 0.01,
                                           "stats": {"models": ["fake"]}}))
        self.queue = []
        return events

    def request_stop(self):
        self.stop.set()

    def shutdown(self):
        self.queue = []


def fake_batch(tmp_path, sources, executor, max_attempts=3, on_event=None, options=None):
    """A batch over the fake executor; its 'outputs' are not images, so the driver signs nothing."""
    out = tmp_path / "out"
    spec = JobSpec(options=options or {**FAST, "optout_metadata": False})
    with Manifest.open(out) as manifest:
        runner = BatchRunner(sources, out, spec, executor, manifest,
                             output_for=lambda s: default_output_path(s, out), max_attempts=max_attempts,
                             on_event=on_event)
        summary = runner.run()
    return summary, runner, read_records(out / "fixative-batch.jsonl")


class PngExecutor(FakeExecutor):
    """'Protects' every file into the same small unsigned PNG, as a worker on another node would."""

    def poll(self, timeout):
        import io

        from PIL import Image

        buffer = io.BytesIO()
        Image.new("RGB", (8, 8), (200, 40, 40)).save(buffer, "PNG")
        events = [Event(item, {"status": "done", "data": buffer.getvalue(), "seconds": 0.01,
                               "stats": {"models": ["fake"]}}) for item, _ in self.queue]
        self.queue = []
        return events


def test_the_driver_signs_what_workers_send(tmp_path, monkeypatch):
    """Workers return unsigned bytes; the driver, which alone holds the artist's identity, signs them."""
    from fixative.provenance import read_credentials

    monkeypatch.setenv("FIXATIVE_HOME", str(tmp_path / "home"))
    sources = make_inputs(tmp_path, ["a.png", "b.png"])
    summary, _, _ = fake_batch(tmp_path, sources, PngExecutor(), options=dict(FAST))
    assert summary.done == 2
    for name in ("a", "b"):
        found = read_credentials((tmp_path / "out" / f"{name}.protected.png").read_bytes())
        assert found.present and found.opts_out, found
        assert found.validation_state in ("Valid", "Trusted"), found.failures
    unsigned = tmp_path / "unsigned"
    unsigned.mkdir()
    summary, _, _ = fake_batch(unsigned, sources, PngExecutor(), options={**FAST, "optout_metadata": False})
    assert not read_credentials((unsigned / "out" / "a.protected.png").read_bytes()).present


def make_inputs(tmp_path, names):
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    paths = []
    for name in names:
        (folder / name).write_bytes(name.encode())
        paths.append(folder / name)
    return paths


def test_failures_retry_across_runs_up_to_the_limit(tmp_path):
    sources = make_inputs(tmp_path, ["a.png", "bad.png", "c.png"])
    first, _, _ = fake_batch(tmp_path, sources, FakeExecutor(fail={"bad.png"}), max_attempts=2)
    assert (first.done, first.failed) == (2, 1)
    assert (tmp_path / "out" / "a.protected.png").read_bytes() == b"a.png"[::-1]
    second_executor = FakeExecutor(fail={"bad.png"})
    second, _, records = fake_batch(tmp_path, sources, second_executor, max_attempts=2)
    assert second_executor.submitted == ["bad.png"]  # done files are not redone
    assert (second.skipped_done, second.failed) == (2, 1)
    assert [r["attempt"] for r in records if r["input"].endswith("bad.png")] == [1, 2]
    third_executor = FakeExecutor()
    third, _, _ = fake_batch(tmp_path, sources, third_executor, max_attempts=2)
    assert third_executor.submitted == [] and third.gave_up == 1
    fourth_executor = FakeExecutor()  # a higher limit tries again, and now it works
    fourth, _, _ = fake_batch(tmp_path, sources, fourth_executor, max_attempts=3)
    assert fourth_executor.submitted == ["bad.png"] and fourth.done == 1


def test_a_lost_worker_is_a_retry_not_a_failure(tmp_path):
    sources = make_inputs(tmp_path, ["a.png", "b.png", "cursed.png"])
    summary, _, records = fake_batch(tmp_path, sources, FakeExecutor(lose={"a.png": 1, "cursed.png": 99}),
                                     max_attempts=3)
    by_input = {}
    for record in records:
        by_input.setdefault(Path(record["input"]).name, []).append(record["status"])
    assert by_input["a.png"] == [RETRIED, DONE]
    assert by_input["cursed.png"] == [RETRIED, RETRIED, FAILED]  # a file that kills every worker stops
    assert (summary.done, summary.failed, summary.retried) == (2, 1, 3)
    assert [r["error"]["code"] for r in records if r["status"] == FAILED] == ["worker_lost"]


def test_colliding_outputs_and_missing_files_fail_alone(tmp_path):
    sources = make_inputs(tmp_path, ["x.png", "x.jpg", "y.png"]) + [tmp_path / "in" / "gone.png"]
    executor = FakeExecutor()
    summary, _, records = fake_batch(tmp_path, sources, executor)
    assert executor.submitted == ["x.png", "y.png"]
    codes = {Path(r["input"]).name: r.get("error", {}).get("code") for r in records if r["status"] == FAILED}
    assert codes == {"x.jpg": "output_collision", "gone.png": "bad_image"}
    assert (summary.done, summary.failed) == (2, 2)


def test_changed_options_redo_done_files(tmp_path):
    sources = make_inputs(tmp_path, ["a.png"])
    fake_batch(tmp_path, sources, FakeExecutor())
    out = tmp_path / "out"
    executor = FakeExecutor()
    with Manifest.open(out) as manifest:
        runner = BatchRunner(sources, out, JobSpec(options={**FAST, "seed": 7}), executor, manifest,
                             output_for=lambda s: default_output_path(s, out))
        runner.run()
    assert executor.submitted == ["a.png"]


def test_stop_flag_stops_dispatching_and_records_nothing_false(tmp_path):
    sources = make_inputs(tmp_path, [f"f{i}.png" for i in range(6)])
    executor = FakeExecutor(slots=1)

    def stop_after_two(runner, event):
        if runner.summary.done >= 2:
            runner.stop.set()

    summary, _, records = fake_batch(tmp_path, sources, executor, on_event=stop_after_two)
    assert summary.interrupted and summary.done == 2 and executor.submitted == ["f0.png", "f1.png"]
    again = FakeExecutor(slots=1)
    resumed, _, _ = fake_batch(tmp_path, sources, again)
    assert again.submitted == [f"f{i}.png" for i in range(2, 6)] and resumed.skipped_done == 2


# -- real protection, in-process --------------------------------------------------------------

@pytest.fixture(scope="module")
def model_env():
    if not (MODELS / "taef2_encoder.pth").exists():
        pytest.skip("../shared/models/taesd/taef2_encoder.pth is missing")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIXATIVE_MODEL_DIR", str(MODELS))
        mp.setenv("FIXATIVE_OFFLINE", "1")
        yield mp


def run_cli(argv: list[str]) -> int:
    from fixative.cli import main

    return main(argv)


def _without_c2pa(png: bytes) -> bytes:
    """The PNG without its C2PA manifest chunk (caBX), after checking that it had one."""
    import struct

    kept, position, found = [png[:8]], 8, False
    while position < len(png):
        length = struct.unpack(">I", png[position:position + 4])[0]
        if png[position + 4:position + 8] == b"caBX":
            found = True
        else:
            kept.append(png[position:position + 12 + length])
        position += 12 + length
    assert found, "the output carries no C2PA manifest"
    return b"".join(kept)


@pytest.mark.slow
def test_in_process_batch_matches_fixative_protect(tmp_path, model_env):
    model_env.setenv("FIXATIVE_HOME", str(tmp_path / "home"))
    sources = write_paintings(tmp_path / "in", 2)
    write_corrupt(tmp_path / "in")
    out = tmp_path / "out"
    assert run_cli(["batch", str(tmp_path / "in"), "--out-dir", str(out), *CLI_FAST]) == 1  # one bad file
    records = read_records(out / "fixative-batch.jsonl")
    status = {Path(r["input"]).name: r["status"] for r in records}
    assert status == {"p00.png": DONE, "p01.png": DONE, "zz_corrupt.png": FAILED}
    done = next(r for r in records if r["status"] == DONE)
    assert done["models"] == ["taef2"] and done["options"]["steps"] == 2 and done["seconds"] > 0
    assert 0 < done["stats"]["psnr"] < 99 and "taef2" in done["stats"]["closing"]
    # Same file, same name, same bytes (pixels and metadata) as `fixative protect --out-dir`, up to
    # the signed C2PA manifest chunk, whose instance ids are new in every signature.
    single = tmp_path / "single"
    assert run_cli(["protect", str(sources[0]), "--out-dir", str(single), *CLI_FAST[:-2]]) == 0
    assert (_without_c2pa((out / "p00.protected.png").read_bytes())
            == _without_c2pa((single / "p00.protected.png").read_bytes()))
    # Re-running redoes nothing that is done and retries the bad file.
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.protected.png")}
    assert run_cli(["batch", str(tmp_path / "in"), "--out-dir", str(out), *CLI_FAST]) == 1
    again = read_records(out / "fixative-batch.jsonl")[len(records):]
    assert [(Path(r["input"]).name, r["status"], r["attempt"]) for r in again] == [("zz_corrupt.png", FAILED, 2)]
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.protected.png")} == before


@pytest.mark.slow
def test_missing_weights_stop_the_batch_before_any_file(tmp_path, model_env, capsys):
    model_env.setenv("FIXATIVE_HOME", str(tmp_path / "home"))
    write_paintings(tmp_path / "in", 1)
    out = tmp_path / "out"
    assert run_cli(["batch", str(tmp_path / "in"), "--out-dir", str(out), *CLI_FAST, "--models", "taesd"]) == 1
    assert "taesd" in capsys.readouterr().err
    assert read_records(out / "fixative-batch.jsonl") == []  # no file was blamed for it


@pytest.mark.slow
def test_ctrl_c_leaves_a_whole_manifest_and_resume_finishes(tmp_path, model_env):
    """SIGINT to a real `fixative batch` process: exit 130, every line complete, nothing redone."""
    home = tmp_path / "home"
    model_env.setenv("FIXATIVE_HOME", str(home))
    write_paintings(tmp_path / "in", 10)
    out = tmp_path / "out"
    manifest = out / "fixative-batch.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO / "engine") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen([sys.executable, "-m", "fixative.cli", "batch", str(tmp_path / "in"),
                                "--out-dir", str(out), *CLI_FAST], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if manifest.exists() and any(r["status"] == DONE for r in read_records(manifest)):
                break
            time.sleep(0.05)
        assert process.poll() is None, f"batch ended before it could be interrupted: {process.communicate()}"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    raw = manifest.read_bytes()
    assert raw.endswith(b"\n")
    records = [json.loads(line) for line in raw.splitlines()]  # every line is whole JSON
    done_first = {r["input"] for r in records if r["status"] == DONE}
    assert 1 <= len(done_first) < 10
    assert all(r["status"] in (DONE, INTERRUPTED) for r in records)
    for record in records:
        if record["status"] == DONE:
            assert Path(record["output"]).exists()
    assert not list(out.glob(".*.part"))  # no half-written output left behind

    assert run_cli(["batch", str(tmp_path / "in"), "--out-dir", str(out), *CLI_FAST]) == 0
    resumed = read_records(manifest)[len(records):]
    assert not done_first & {r["input"] for r in resumed}  # nothing already done was redone
    assert {r["input"] for r in resumed if r["status"] == DONE} | done_first == {
        str(p.resolve()) for p in (tmp_path / "in").glob("*.png")}
    outputs = sorted(out.glob("*.protected.png"))
    assert len(outputs) == 10
    from fixative.imageio import load_image

    original = load_image(tmp_path / "in" / "p03.png").array
    protected = load_image(out / "p03.protected.png").array
    assert protected.shape == original.shape and not np.array_equal(protected, original)
