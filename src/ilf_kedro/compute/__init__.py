"""The heavy stages on a Ray cluster (``compute.backend: ray``): verdicts, sampling and
fine-tuning. Plain library code, no Kedro import; Ray itself is imported only when a
function here runs, so the project works without the ``ray`` extra."""

from ilf_kedro.compute.cluster import connect, ray_available, uses_ray
from ilf_kedro.parameters import RAY_EXTRA

__all__ = ["RAY_EXTRA", "connect", "ray_available", "uses_ray"]
