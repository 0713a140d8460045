"""The heavy stages on a Ray cluster (``compute.backend: ray``): verdicts, sampling and
fine-tuning. Plain library code, no Kedro import; Ray itself is imported only when a
function here runs, so the project works without the ``ray`` extra."""

from ilf_kedro.compute.cluster import RAY_EXTRA, connect, ray_available, uses_ray

__all__ = ["RAY_EXTRA", "connect", "ray_available", "uses_ray"]
