"""The paper's ILF logic (plain Python, no Kedro): prompt formats (``prompts``), pass@k
(``metrics``), failing tasks and the refinement and fine-tuning sets (``training_sets``)."""
