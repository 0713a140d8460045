"""Feedback on failing programs (plain Python, no Kedro): the four sources, human,
unrelated, interpreter and LLM, in one schema (``sources``) and the annotation statistics
(``stats``)."""
