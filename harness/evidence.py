"""Keeping the evidence of a run: its own record, and its directory kept (with the artifacts
and a bundle for a report) or removed, as the keep policy says."""

from __future__ import annotations

import json
from pathlib import Path

from harness.artifacts import bundle, write_artifacts
from harness.criu import Backend
from harness.result import Keep, ScenarioResult
from harness.rundir import RunDir, private_dir

__all__ = ["RESULT", "drop_pages", "keep_or_remove"]

RESULT = "result.json"


def keep_or_remove(
    run_dir: RunDir,
    result: ScenarioResult,
    backend: Backend,
    keep: Keep,
    bundle_into: Path | None = None,
) -> None:
    """Write the run's own record, then keep its directory (with the artifacts, and a bundle
    in bundle_into) or remove it."""
    try:
        (run_dir.path / RESULT).write_text(json.dumps(result.to_json(), indent=2))
    except OSError:
        pass
    if not keep.keeps(result.outcome):
        run_dir.remove()
        result.artifacts = ""
        return
    write_artifacts(run_dir.path, result, backend)
    result.artifacts = str(run_dir.path)
    if bundle_into is not None:
        # The report holds the evidence while the run directory stays where it ran: CRIU's
        # images name files by absolute path, so a moved run could not be restored again.
        private_dir(bundle_into)  # bundles hold memory images: 0700
        target = bundle_into / f"{run_dir.path.name}.tar.gz"
        result.bundle = str(bundle(run_dir.path, target))


def drop_pages(images: Path) -> None:
    """Remove the memory pages of a verified cycle's images; the logs and the small images
    (what a reader of the artifacts looks at) stay."""
    for pages in images.glob("*/pages-*.img"):
        pages.unlink(missing_ok=True)
