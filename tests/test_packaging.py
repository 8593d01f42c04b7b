"""A non-editable install (a wheel, a cluster image) composes the same configs as a checkout."""
from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from bigcat_ml.config.compose import CONF_DIR

PROJECT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

_COMPOSE = """
import json
from omegaconf import OmegaConf
from bigcat_ml.config.compose import CONF_DIR
from bigcat_ml.stepkit.step import compose
cfg = compose(["model=resnet50", "classes=carnivores"])
print(json.dumps({"conf_dir": str(CONF_DIR), "cfg": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)}))
"""


def test_the_built_wheel_carries_conf_and_composes_it_in_a_fresh_environment(tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(PROJECT), "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)],
        check=True, cwd=tmp_path, timeout=600,
    )
    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # The third-party packages come from this environment by path only: its .pth files (the
    # editable checkout among them) are not processed, so bigcat_ml can only come from the wheel.
    fresh_site = Path(subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                                     capture_output=True, text=True, check=True).stdout.strip())
    (fresh_site / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    # Without PYTHONPATH: a checkout on it (with the egg-info the build leaves there) would
    # look installed to pip, which would then skip the wheel.
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", *map(str, wheels.glob("*.whl"))],
                   check=True, timeout=600, env=clean)
    env = {"PATH": "/usr/bin:/bin", "BIGCAT_OUTPUT_DIR": str(tmp_path / "out"), "MLFLOW_TRACKING_URI": "sqlite:///x.db"}
    done = subprocess.run([str(python), "-c", _COMPOSE], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    installed = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(installed["conf_dir"]).is_relative_to(fresh_site)
    assert sorted(p.relative_to(CONF_DIR).as_posix() for p in CONF_DIR.rglob("*.yaml")) == sorted(
        p.relative_to(installed["conf_dir"]).as_posix() for p in Path(installed["conf_dir"]).rglob("*.yaml")
    )
    assert installed["cfg"]["model"]["keras_class"] == "ResNet50"
    assert installed["cfg"]["classes"]["descendants_of"] == ["Carnivore"]
    assert 291 in installed["cfg"]["classes"]["families"]["big_cats"]["imagenet"]  # inherited from bigcats.yaml
