"""ilf-kedro: Imitation learning from Language Feedback for code generation, as Kedro pipelines."""

__version__ = "0.1.0"
