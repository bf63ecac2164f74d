"""`fixative batch`: protect thousands of files, in-process or on a Ray cluster, resumably.

- :mod:`fixative.batch.manifest`: the JSON Lines record of what happened to each file.
- :mod:`fixative.batch.work`: what a worker does with one file (same code in-process and on Ray).
- :mod:`fixative.batch.runner`: the scheduler and the in-process executor.
- :mod:`fixative.batch.ray_executor`: Ray actors (imported only with ``--ray``).
"""

from __future__ import annotations

from fixative.batch.manifest import MANIFEST_NAME, Manifest, read_records
from fixative.batch.runner import BatchRunner, BatchSummary, InProcessExecutor
from fixative.batch.work import JobSpec, WorkItem, WriteSettings

__all__ = ["MANIFEST_NAME", "Manifest", "read_records", "BatchRunner", "BatchSummary", "InProcessExecutor",
           "JobSpec", "WorkItem", "WriteSettings"]
