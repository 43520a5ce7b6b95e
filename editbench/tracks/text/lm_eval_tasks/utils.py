"""lm-eval hooks of the lamp tasks (written by `editbench lm-eval tasks`): editbench's exact parser scores."""

from editbench.tracks.text.lm_tasks import process_describe, process_perplexity  # noqa: F401
