"""The project's pipelines, one package per ILF stage."""

from functools import partial, update_wrapper

from kedro.pipeline import Pipeline


def shared_parameters(template: Pipeline, **renamed: str) -> dict[str, str]:
    """A namespaced pipeline's ``parameters`` mapping: every parameter of ``template``
    stays the run's own (Kedro would prefix it with the namespace) except those in
    ``renamed`` (``refiner="params:ablations.one_shot_refiner"`` maps ``params:refiner``)."""
    shared = {p: p for p in template.inputs() if p.startswith("params:")}
    return {**shared, **{f"params:{name}": target for name, target in renamed.items()}}


def bound(function, **keywords):
    """``function`` with ``keywords`` fixed, keeping its name and docstring (a node's
    name and kedro-viz's description come from them)."""
    return update_wrapper(partial(function, **keywords), function)
