"""Publishing a chip dataset is atomic and honest: checked before the move, never two
winners, the previous or the new dataset at the output at every instant, and dead runs'
leftovers cleaned by the next run."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, List

import pytest
from test_dataset import frames, siblings

from bigcat_ml.chips.build import ReconciliationError, reconcile
from bigcat_ml.chips.dataset import check_output, read_summary, write_chip_dataset

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
import bigcat_ml.chips.dataset as dataset
from bigcat_ml.storage.publish import LocalFolders
from bigcat_ml.config.compose import compose
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
dataset.write_chip_dataset(spark, chips, rejects, output, overwrite=True, verify=pause if instant == "staged" else None)
"""

pytestmark = pytest.mark.spark


def test_counts_are_reconciled_before_the_dataset_is_moved_into_place(spark, tmp_path):
    output = tmp_path / "ds"
    chips, rejects = frames(spark)
    previous = write_chip_dataset(spark, chips, rejects, str(output))

    smaller, _ = frames(spark, n_chips=2)
    with pytest.raises(ReconciliationError, match="9 selected boxes but 2 chips"):
        write_chip_dataset(spark, smaller, rejects, str(output), overwrite=True, verify=lambda written: reconcile(9, written))

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
    with caplog.at_level(logging.WARNING, logger="bigcat_ml.chips.dataset"):
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
        with caplog.at_level(logging.WARNING, logger="bigcat_ml.chips.dataset"):
            check_output(str(output), overwrite=True)
        kept = siblings(output)
    finally:
        release.set()
        writer.join()

    assert any(".tmp-" in name for name in kept)
    assert "still writing or cannot be proven dead" in caplog.text
    assert siblings(output) == ["ds"]
