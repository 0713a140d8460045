"""The heavy stages on a Ray cluster (``compute.backend: ray``): verdicts, sampling and
fine-tuning, as implementations of what the library layers take (a verdict function,
sampling ``Replicas``, a fine-tune ``Launcher``), which the Kedro nodes pick from the
``compute`` section. Depends on ``models`` and ``execution``, never the other way;
plain library code, no Kedro import; Ray itself is imported only when a function here
runs, so the project works without the ``ray`` extra."""

from ilf_kedro.compute.cluster import connect
from ilf_kedro.parameters import RAY_EXTRA

__all__ = ["RAY_EXTRA", "connect"]
