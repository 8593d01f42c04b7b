"""``compare``: the evaluation runs of an experiment side by side, logged as a run."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Dict

import mlflow
from omegaconf import DictConfig

from bigcat_ml.tracking import names

from bigcat_ml.reporting import comparison
from bigcat_ml.reporting.table import terminal_table
from bigcat_ml.scoring.models import RANDOM_INIT
from bigcat_ml.stepkit.step import Step, hydra_entry_point
from bigcat_ml.tracking.redact import redact_text
from bigcat_ml.tracking.runs import setup_tracking, step_run
from bigcat_ml.tracking.ui import how_to_open


def run(cfg: DictConfig) -> Dict[str, Any]:
    """Build the comparison table and figures; log them; print the short table."""
    experiment_id = setup_tracking(cfg.mlflow)
    runs = comparison.find_evaluation_runs(experiment_id, cfg.compare.filter_tag)
    comparison.check_same_dataset(runs, cfg.compare.allow_mixed_datasets)
    with tempfile.TemporaryDirectory() as tmp, step_run(cfg, STEP.name) as active:
        result = comparison.build_comparison(runs, Path(tmp), cfg.compare.subset)
        table = result.table
        mlflow.log_text(table.to_markdown(index=False), names.COMPARISON_MD)
        mlflow.log_text(table.to_csv(index=False), names.COMPARISON_CSV)
        mlflow.log_text(table.to_html(index=False), names.COMPARISON_HTML)
        for name, figure in comparison.comparison_figures(result).items():
            mlflow.log_figure(figure, f"{names.COMPARISON_DIR}/{name}")
        mlflow.set_tag(names.COMPARED_RUNS_TAG, ",".join(runs["run_id"]))
        print(terminal_table(comparison.short_table(result), result.basis))
        print(_where_to_look(cfg, experiment_id, active.info.run_id, set(runs[f"tags.{names.WEIGHTS_TAG}"])))
        return {"run_id": active.info.run_id, "table": table}


def _where_to_look(cfg: DictConfig, experiment_id: str, run_id: str, weights: set) -> str:
    lines = [
        f"comparison run {run_id} in experiment {experiment_id} ({redact_text(cfg.mlflow.tracking_uri)})",
        f"artifacts: {mlflow.get_run(run_id).info.artifact_uri}/{names.COMPARISON_DIR}",
        how_to_open(cfg.mlflow.tracking_uri, experiment_id),
    ]
    if RANDOM_INIT in weights:
        lines.append("note: runs marked [random-init] used random weights (offline); their accuracy means nothing")
    return "\n".join(lines)


STEP = Step(name=names.COMPARE_STEP, run=run)
main = hydra_entry_point(STEP)

if __name__ == "__main__":
    main()
