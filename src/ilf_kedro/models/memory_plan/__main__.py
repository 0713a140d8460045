"""``python -m ilf_kedro.models.memory_plan [--table] [--model M] [--env E] [--params P]``."""

from .table import main

main()
