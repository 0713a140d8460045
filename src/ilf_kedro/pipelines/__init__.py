"""The project's pipelines, one package per ILF stage."""

from kedro.pipeline import Pipeline


def shared_parameters(template: Pipeline, **renamed: str) -> dict[str, str]:
    """A namespaced pipeline's ``parameters`` mapping: every parameter of ``template``
    stays the run's own (Kedro would prefix it with the namespace) except those in
    ``renamed`` (``refiner="params:ablations.one_shot_refiner"`` maps ``params:refiner``)."""
    shared = {p: p for p in template.inputs() if p.startswith("params:")}
    return {**shared, **{f"params:{name}": target for name, target in renamed.items()}}
