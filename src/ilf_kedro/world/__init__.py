"""The miniature world (plain Python, no Kedro): generated tasks with known slips
(``tasks``, ``generate``), a base model trained from scratch on an imperfect corpus
(``pretrain``) and an annotator that writes feedback on its failing programs
(``annotator``). Pipeline ``world`` wires them; docs/world.md."""
