"""Adds the top-level ``conf/`` to the wheel as the package data ``bigcat_ml/conf``.

pyproject.toml cannot name a package whose folder lies outside the package tree, and
Hydra users expect ``conf/`` at the top of the checkout; everything else is in
pyproject.toml.
"""
from setuptools import setup
from setuptools.command.build_py import build_py
from pathlib import Path


class BuildWithConf(build_py):
    """Copy conf/**/*.yaml into build/lib/bigcat_ml/conf (wheels and non-editable installs)."""

    def run(self) -> None:
        super().run()
        for source in sorted(Path("conf").rglob("*.yaml")):
            target = Path(self.build_lib) / "bigcat_ml" / source
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target), preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True):
        confs = [str(Path(self.build_lib) / "bigcat_ml" / p) for p in sorted(Path("conf").rglob("*.yaml"))]
        return [*super().get_outputs(include_bytecode), *confs]


setup(cmdclass={"build_py": BuildWithConf})
