"""Kedro project settings."""

from kedro.config import OmegaConfigLoader

from ilf_kedro.hooks import MLflowTrackingHooks, ParameterCheckHooks, RunSummaryHooks

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Environments such as `paper` override single keys, not whole sections.
    "merge_strategy": {"parameters": "soft", "catalog": "soft"},
}
# pluggy calls the last registered hook first: the parameter checks (and the rounds plan,
# needed before anything builds the pipelines) come last, so they run first.
HOOKS = (RunSummaryHooks(), MLflowTrackingHooks(), ParameterCheckHooks())
# MLflowTrackingHooks is kedro-mlflow's hook made safe; the plugin's own copy (registered
# through its entry point, after HOOKS, so before the checks) would track twice. Kedro
# matches the distribution's metadata name, kedro_mlflow in 2.0.3.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow", "kedro-mlflow")
