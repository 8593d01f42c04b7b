"""Keep each finished benchmark stage on disk, so a stopped run keeps what it measured.

A full benchmark runs for the better part of an hour on a 2-core machine, and it has to run
alone there. A run stopped before its end (to free the machine, or by a crash in its last
stage) would otherwise lose every figure; with ``--resume`` the next run of the same kind
starts where it stopped.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Checkpoint:
    """Finished stages of one kind of run, saved as JSON after each stage.

    ``identity`` names what the saved stages were measured on (sizes, profile, code);
    stages saved under another identity are not reused. Without ``resume`` every stage
    runs again and the file is rewritten from scratch.
    """

    def __init__(self, path: Path, identity: Mapping[str, Any], resume: bool) -> None:
        self.path = path
        self.identity = dict(identity)
        saved: Dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if resume and path.exists() else {}
        if saved.get("identity") != json.loads(json.dumps(self.identity, default=str)):
            if saved:
                log.info("%s holds stages of another run (%s); starting afresh", path, saved.get("identity"))
            saved = {}
        self.stages: Dict[str, Any] = saved.get("stages", {})
        # The stages measured by an earlier, stopped run, which the results must say.
        self.kept: List[str] = sorted(self.stages)

    def stage(self, name: str, run: Callable[[], T]) -> T:
        """The saved result of stage ``name``, or ``run()``'s, saved before it is returned."""
        if name in self.stages:
            log.info("stage %s: kept from %s", name, self.path)
            return self.stages[name]
        result = run()
        self.stages[name] = json.loads(json.dumps(result, default=str))
        self._save()
        return result

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".tmp")
        partial.write_text(json.dumps({"identity": self.identity, "stages": self.stages}, indent=1, default=str), encoding="utf-8")
        os.replace(partial, self.path)
