"""What an ILF run shows in MLflow, as plain data (no Kedro, no MLflow calls): its tables
as metrics (``metrics``), its name, tags and store (``runs``)."""
