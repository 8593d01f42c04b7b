"""Publishing a chip dataset is atomic and honest: checked before the move, never two
winners, the previous or the new dataset at the output at every instant, dead runs'
leftovers cleaned by the next run, never replaced under a reader, and of two ``main`` runs
building one folder the second waits for the first and reuses its dataset."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import json
import threading
from pathlib import Path
from typing import Dict, List

import pytest
from test_dataset import frames, siblings

from bigcat_ml.chips.build import ReconciliationError, reconcile
from bigcat_ml import main as main_step, sample_data
from bigcat_ml.chips.manifest import read_summary
from bigcat_ml.chips.writer import check_output, write_chip_dataset
from bigcat_ml.stepkit.step import compose

PROJECT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
PAUSED = "PAUSED"

# Overwrites <output> with a 2-chip dataset, stopping for good at one instant of the
# publication (argv[2]) so that the test can kill it there:
#   staged   - the new dataset is complete and checked, not yet moved into place;
#   swapped  - the new dataset is in place, the previous one not yet deleted.
_KILLED_WRITER = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import bigcat_ml.chips.writer as writer
from bigcat_ml.storage.publish import LocalFolders
from bigcat_ml.stepkit.step import compose
from bigcat_ml.runtime.spark import get_spark
from test_dataset import frames

output, instant = sys.argv[1], sys.argv[2]

def pause(*_args):
    print("{PAUSED}", flush=True)
    sys.stdin.read()  # blocks until the test kills this process

exchange = LocalFolders.exchange

def exchange_then_pause(self, a, b):
    done = exchange(self, a, b)
    pause()
    return done

if instant == "swapped":
    LocalFolders.exchange = exchange_then_pause
spark = get_spark(compose(["spark.master='local[1]'", "spark.conf.spark.driver.memory=1g"]).spark)
chips, rejects = frames(spark, n_chips=2)
writer.write_chip_dataset(spark, chips, rejects, output, overwrite=True, verify=pause if instant == "staged" else None)
"""

# Holds the dataset at argv[1] as a reader does (evaluate, train) until its stdin closes.
_READER = f"""
import sys
from bigcat_ml.storage.publish import reading

with reading(sys.argv[1], wait_s=60):
    print("{PAUSED}", flush=True)
    sys.stdin.read()
"""

# ``main`` with its chain cut to the preprocess step, on the config of argv[1] (JSON
# overrides); with argv[2] == "pause" it stops before moving its dataset into place
# until a line arrives on stdin. Logs on stdout, the step runs on the line after RUNS.
_MAIN_PREPROCESS = f"""
import json, logging, sys
from bigcat_ml import main
from bigcat_ml.stepkit.step import compose
from bigcat_ml.storage.publish import LocalFolders

logging.basicConfig(level=logging.INFO, stream=sys.stdout)
main.chain = lambda cfg: (main.get("preprocess"),)
if sys.argv[2] == "pause":
    move = LocalFolders.move_noreplace

    def pause_then_move(self, src, dst):
        print("{PAUSED}", flush=True)
        sys.stdin.readline()
        move(self, src, dst)

    LocalFolders.move_noreplace = pause_then_move
print("RUNS", json.dumps(main.run(compose(json.loads(sys.argv[1])))), flush=True)
"""

pytestmark = pytest.mark.spark


def _python(script: str, *args: str, stdout=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}, "PYTHONPATH": str(PROJECT)},
        stdin=subprocess.PIPE, stdout=stdout, stderr=subprocess.DEVNULL, text=True,
        start_new_session=True,  # its own process group: the Spark JVM dies with it
    )


def _read_until(process: subprocess.Popen, marker: str) -> List[str]:
    """The lines ``process`` printed up to the first one containing ``marker`` (all, if none)."""
    lines: List[str] = []
    for line in process.stdout:
        lines.append(line)
        if marker in line:
            break
    return lines


def test_counts_are_reconciled_before_the_dataset_is_moved_into_place(spark, tmp_path):
    output = tmp_path / "ds"
    chips, rejects = frames(spark)
    previous = write_chip_dataset(spark, chips, rejects, str(output))

    smaller, _ = frames(spark, n_chips=2)
    with pytest.raises(ReconciliationError, match="9 selected boxes but 2 chips"):
        write_chip_dataset(spark, smaller, rejects, str(output), overwrite=True, verify=lambda written: reconcile(9, written, str(output)))

    assert read_summary(str(output)) == previous
    assert siblings(output) == ["ds"]


def test_of_two_concurrent_runs_to_one_output_one_wins_and_the_other_fails_clearly(spark, tmp_path):
    output = tmp_path / "ds"
    both_staged = threading.Barrier(2, timeout=600)
    outcomes: Dict[int, object] = {}

    def preprocess(n_chips: int) -> None:
        chips, rejects = frames(spark, n_chips=n_chips)
        try:
            # Both runs found no dataset at the output and have written theirs aside.
            outcomes[n_chips] = write_chip_dataset(spark, chips, rejects, str(output), verify=lambda _: both_staged.wait())
        except Exception as error:  # noqa: BLE001 - the outcome is what the test checks
            outcomes[n_chips] = error

    runs = [threading.Thread(target=preprocess, args=(n,)) for n in (2, 4)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()

    failures = [o for o in outcomes.values() if isinstance(o, Exception)]
    winners = [o for o in outcomes.values() if isinstance(o, dict)]
    assert len(failures) == 1 and len(winners) == 1
    assert isinstance(failures[0], FileExistsError)
    assert "published by another run while this one was writing; nothing was replaced" in str(failures[0])
    assert read_summary(str(output)) == winners[0]
    assert siblings(output) == ["ds"]


@pytest.mark.slow
@pytest.mark.parametrize("instant, at_output", [("staged", 5), ("swapped", 2)])
def test_a_kill_at_any_instant_leaves_a_whole_dataset_and_the_next_run_cleans_up(
    spark, tmp_path, caplog, instant, at_output
):
    output = tmp_path / "ds"
    chips, rejects = frames(spark)
    write_chip_dataset(spark, chips, rejects, str(output))
    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(output), instant],
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        start_new_session=True,  # its own process group: the Spark JVM dies with it
    )
    try:
        lines: List[str] = []
        for line in writer.stdout:
            lines.append(line)
            if line.strip() == PAUSED:
                break
        assert lines and lines[-1].strip() == PAUSED, "the writer ended before the instant under test"
    finally:
        os.killpg(writer.pid, signal.SIGKILL)
        writer.wait()

    assert read_summary(str(output))["chips"] == at_output  # never neither
    assert any(".tmp-" in name for name in siblings(output))
    with caplog.at_level(logging.WARNING, logger="bigcat_ml.storage.publish"):
        check_output(str(output), overwrite=True)

    assert siblings(output) == ["ds"]
    assert "left by a run that died" in caplog.text
    assert read_summary(str(output))["chips"] == at_output


def test_leftovers_of_a_running_run_are_reported_and_kept(spark, tmp_path, caplog):
    output = tmp_path / "ds"
    chips, rejects = frames(spark)
    write_chip_dataset(spark, chips, rejects, str(output))
    staged = threading.Event()
    release = threading.Event()

    def hold(_written) -> None:
        staged.set()
        release.wait(timeout=600)

    writer = threading.Thread(
        target=write_chip_dataset, args=(spark, chips, rejects, str(output)), kwargs={"overwrite": True, "verify": hold}
    )
    writer.start()
    staged.wait(timeout=600)
    try:
        with caplog.at_level(logging.WARNING, logger="bigcat_ml.storage.publish"):
            check_output(str(output), overwrite=True)
        kept = siblings(output)
    finally:
        release.set()
        writer.join()

    assert any(".tmp-" in name for name in kept)
    assert "still writing or cannot be proven dead" in caplog.text
    assert siblings(output) == ["ds"]


def test_an_overwrite_refuses_while_another_process_reads_the_dataset_and_goes_through_once_it_ends(spark, tmp_path):
    output = tmp_path / "ds"
    chips, rejects = frames(spark)
    previous = write_chip_dataset(spark, chips, rejects, str(output))
    smaller, _ = frames(spark, n_chips=2)
    reader = _python(_READER, str(output))
    try:
        assert _read_until(reader, PAUSED)[-1].strip() == PAUSED, "the reader ended before it held the dataset"
        with pytest.raises(TimeoutError, match="still being read by another run after 0.5 s; nothing was replaced"):
            write_chip_dataset(spark, smaller, rejects, str(output), overwrite=True, lock_wait_s=0.5)
        assert read_summary(str(output)) == previous
        assert siblings(output) == ["ds"]
    finally:
        reader.stdin.close()
        reader.wait()

    write_chip_dataset(spark, smaller, rejects, str(output), overwrite=True, lock_wait_s=0.5)
    assert read_summary(str(output))["chips"] == 2


def _step_runs(printed: str) -> Dict[str, str]:
    return json.loads(next(line for line in printed.splitlines() if line.startswith("RUNS "))[len("RUNS "):])


@pytest.fixture
def chain_cfg(tmp_path):
    """The overrides of a small ``main`` chain, with its sample data generated."""
    overrides = [
        f"paths.output_dir={tmp_path / 'outputs'}",
        "data.sample.images_per_subset={train:4,validation:2,test:2}",
        "spark.master='local[1]'",
        "spark.conf.spark.driver.memory=1g",
    ]
    sample_data.run(compose(overrides))
    return overrides


@pytest.mark.slow
def test_a_second_main_on_a_folder_being_built_waits_for_the_first_and_reuses_its_dataset(chain_cfg):
    output = Path(compose(chain_cfg).preprocess.output)
    first = _python(_MAIN_PREPROCESS, json.dumps(chain_cfg), "pause")
    second = None
    try:
        assert _read_until(first, PAUSED)[-1].strip() == PAUSED, "the first run ended before publishing"
        second = _python(_MAIN_PREPROCESS, json.dumps(chain_cfg), "go")
        waited = _read_until(second, "is being built by")
        assert "is being built by" in waited[-1], "".join(waited[-20:])
        first.stdin.write("\n")
        first.stdin.flush()
        first_out, _ = first.communicate(timeout=900)
        second_out, _ = second.communicate(timeout=900)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    assert (first.returncode, second.returncode) == (0, 0)
    first_runs, second_runs = (_step_runs(out) for out in (first_out, second_out))
    assert second_runs["preprocess"] == first_runs["preprocess"]  # reused, not rebuilt
    assert "reusing finished run " + first_runs["preprocess"] in second_out
    assert sorted(p.name for p in output.parent.iterdir()) == sorted([output.name, "latest"])


def test_main_refuses_to_replace_an_existing_dataset_at_a_chosen_output_without_overwrite(spark, chain_cfg, tmp_path, monkeypatch):
    chosen = tmp_path / "my_chips"
    chips, rejects = frames(spark)
    previous = write_chip_dataset(spark, chips, rejects, str(chosen))
    monkeypatch.setattr(main_step, "chain", lambda cfg: (main_step.get("preprocess"),))

    with pytest.raises(FileExistsError, match="already exists; set preprocess.overwrite=true to replace it"):
        main_step.run(compose([*chain_cfg, f"preprocess.output={chosen}"]))
    assert read_summary(str(chosen)) == previous
