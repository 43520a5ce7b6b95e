"""The lamp world as lm-evaluation-harness tasks, the lamp LM (edited or not) inside lm-eval, and an edit's
collateral: what it does to what it should leave alone.

Four tasks, written as lm-eval YAML with their data (JSONL generated from the world with fixed seeds) by
:func:`write_tasks` (``editbench lm-eval tasks --out DIR``); every prompt is the LM's own format,
``<bos> caption <sep> description``:

* ``lamp_state`` (multiple choice): after a room's description up to one of its lamps, ``a lit`` or
  ``an unlit``; the gold answer is the world's;
* ``lamp_facts`` (multiple choice): the facts an edit of lamp state should leave alone, each asked where the
  caption or the description so far settles it: the wall colour and the time of day (captions that name
  them), whether there is a window (captions that name one), and a lone lamp's kind and place;
* ``lamp_describe`` (generate until ``<eos>``): describe the room of a caption; scored by editbench's
  parser (``parses``: the description follows the grammar; ``follows``: every fact the caption states
  is kept), through the task's ``utils.py``;
* ``lamp_perplexity``: the world's descriptions of held-out captions, word perplexity of the description
  given its caption (a ``loglikelihood`` task with a weighted-perplexity aggregation rather than
  ``loglikelihood_rolling``: the LM models descriptions given captions and never learned to write captions,
  which a rolling loglikelihood would score too).

:class:`EditedLM` is lm-eval's ``HFLM`` around an in-memory lamp LM with an :class:`~editbench.core.Edit`
applied while lm-eval runs (hooks and weight deltas active, removed after; a prompt edit rewrites the
caption inside every request). :func:`evaluate` runs tasks on it; :func:`collateral` scores an edit on
``lamp_facts`` and ``lamp_perplexity`` against the unedited LM.
"""

from __future__ import annotations

import contextlib
import io as stdio
import json
import random
import re
import types
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

import torch

from editbench.core import Edit, UserError, io, seeds
from editbench.world import World, WorldConfig
from editbench.world.captions import parse_caption, rewrite_captions
from editbench.world.config import WALL_COLORS
from editbench.world.descriptions import PLACES, TIME_WORDS, describe, parse_description, scene_facts, sentences

from .tokenizer import prompt_text

TASK_VERSION = 1
TASKS = ("lamp_state", "lamp_facts", "lamp_describe", "lamp_perplexity")
SEEDS = seeds.LM_EVAL
SCENES = {"lamp_state": 300, "lamp_facts": 300, "lamp_describe": 64, "lamp_perplexity": 200}
COLLATERAL_TASKS = ("lamp_facts", "lamp_perplexity")
BOS, SEP, EOS = "<bos>", "<sep>", "<eos>"


def build_docs(task: str) -> list[dict[str, Any]]:
    """The documents of one task (deterministic: fixed world seeds)."""
    if task not in TASKS:
        raise UserError(f"unknown lamp task {task!r}; choose from {list(TASKS)}")
    world = World(WorldConfig())
    seed = SEEDS[task]
    scene = world.scenes(SCENES[task], seed)
    captions, _ = world.captions(scene, seed)
    descriptions, facts = describe(scene), scene_facts(scene)
    rng = random.Random(seed)
    docs: list[dict[str, Any]] = []
    for cap, desc, f in zip(captions, descriptions, facts, strict=True):
        sents = sentences(desc)
        prompt = prompt_text(cap)
        if task == "lamp_state" and f.lamps:
            k = rng.randrange(len(f.lamps))
            prefix = " ".join(sents[:1 + k])
            docs.append({"context": f"{prompt} {prefix}", "choices": ["a lit", "an unlit"],
                         "gold": 0 if f.lamps[k].lit else 1, "caption": cap, "fact": "state"})
        elif task == "lamp_facts":
            c = parse_caption(cap)
            room = sents[0].split()
            window = "a window" if f.window else "no window"
            if c.wall is not None:
                docs.append({"context": prompt, "choices": [f"{w} walls" for w in WALL_COLORS],
                             "gold": list(WALL_COLORS).index(f.wall), "caption": cap, "fact": "wall"})
            if c.window:
                docs.append({"context": f"{prompt} {f.wall} walls ,", "choices": ["a window", "no window"],
                             "gold": 0, "caption": cap, "fact": "window"})
            if c.time is not None:
                head = f"{prompt} {f.wall} walls , {window} , a {f.bed} bed ,"
                docs.append({"context": head, "choices": list(TIME_WORDS.values()),
                             "gold": list(TIME_WORDS).index(f.time), "caption": cap, "fact": "time"})
            if len(f.lamps) == 1 and len(c.lamps) == 1:
                lamp = f.lamps[0]
                state = "a lit" if lamp.lit else "an unlit"
                docs.append({"context": f"{prompt} {' '.join(room)} {state}", "choices": ["table lamp", "floor lamp"],
                             "gold": 0 if lamp.kind == "table" else 1, "caption": cap, "fact": "kind"})
                if c.lamps[0][2] is not None:
                    docs.append({"context": f"{prompt} {' '.join(room)} {state} {lamp.kind} lamp on the",
                                 "choices": list(PLACES), "gold": PLACES.index(lamp.place), "caption": cap,
                                 "fact": "place"})
        elif task == "lamp_describe":
            docs.append({"context": prompt, "caption": cap})
        elif task == "lamp_perplexity":
            docs.append({"context": prompt, "target": f"{desc} {EOS}", "words": len(desc.split()) + 1, "caption": cap})
    return docs


DEFINITIONS = Path(__file__).parent / "lm_eval_tasks"  # each task's YAML body and the utils.py lm-eval imports


def write_tasks(out: str | Path, tasks: tuple[str, ...] = TASKS) -> list[Path]:
    """Write each task's YAML (its body from ``lm_eval_tasks/<task>.yaml``, the package's data, with the path of
    its data) and JSONL data (and the shared ``utils.py``) into ``out``; returns the YAMLs.
    The YAMLs name their data by absolute path (lm-eval's ``datasets`` resolves relative paths from the
    working directory), so write them again after moving the folder."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    io.write_text(out / "utils.py", (DEFINITIONS / "utils.py").read_text())
    written = []
    for task in tasks:
        docs = build_docs(task)
        io.write_text(out / f"{task}.jsonl", "".join(json.dumps(d) + "\n" for d in docs))
        head = (f"# editbench lamp task (task version {TASK_VERSION}); regenerate: editbench lm-eval tasks --out DIR\n"
                f"task: {task}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {out / (task + '.jsonl')}\n"
                "test_split: test\n")
        body = (DEFINITIONS / f"{task}.yaml").read_text()
        written.append(io.write_text(out / f"{task}.yaml", head + body + f"metadata:\n  version: {TASK_VERSION}\n"))
    return written


# ---- hooks lm-eval calls (through the written utils.py) ------------------------------------------------
def process_describe(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """``parses``: the generated description follows the grammar; ``follows``: and keeps every fact its
    caption states."""
    from .report import follows

    text = results[0].replace(EOS, " ").strip()
    facts = parse_description(text)
    return {"parses": float(facts is not None), "follows": float(follows(doc["caption"], facts))}


def process_perplexity(doc: dict[str, Any], results: list[tuple[float, bool]]) -> dict[str, Any]:
    """``word_perplexity`` (pooled over the task's words) and ``nll_per_word`` (per description, whose mean
    gets lm-eval's standard error)."""
    ll, _ = results[0]
    return {"word_perplexity": (ll, doc["words"]), "nll_per_word": -ll / doc["words"]}


# ---- the LM inside lm-eval ---------------------------------------------------------------------------------
_PROMPT = re.compile(rf"^{re.escape(BOS)} (.*?) {re.escape(SEP)}")


def _hflm_class():
    from lm_eval.models.huggingface import HFLM

    class EditedLM(HFLM):
        """lm-eval's HFLM around an in-memory lamp LM; a prompt edit rewrites each request's caption."""

        def __init__(self, lm: Any, prompt: dict | None = None, batch_size: int = 32):
            super().__init__(pretrained=lm, tokenizer=lm.tokenizer, batch_size=batch_size, max_length=lm.config.n_positions)
            self._edit_prompt = prompt

        def _model_generate(self, context, max_length, stop, **generation_kwargs):
            # the lamp LM's own generate() samples with paired noise; lm-eval needs transformers' generate
            from transformers import GPT2LMHeadModel

            self.model.generate = types.MethodType(GPT2LMHeadModel.generate, self.model)
            try:
                return super()._model_generate(context, max_length, stop, **generation_kwargs)
            finally:
                del self.model.generate

        def tok_encode(self, string: str, *args: Any, **kwargs: Any) -> list[int]:
            if self._edit_prompt:
                string = _PROMPT.sub(lambda m: prompt_text(rewrite_captions([m.group(1)], self._edit_prompt)[0]), string)
            return super().tok_encode(string, *args, **kwargs)

    return EditedLM


@contextlib.contextmanager
def _quiet_loggers(*names: str):
    """Only errors from these loggers (HFLM warns that it was handed a model object, which is the point)."""
    import logging

    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def task_manager(folder: str | Path):
    """An lm-eval TaskManager over a folder of tasks only (the harness's own tasks are not indexed)."""
    from lm_eval.tasks import TaskManager

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"task folder {str(folder)!r} does not exist; write one with 'editbench lm-eval tasks --out DIR'")
    return TaskManager(include_path=str(folder), include_defaults=False, verbosity="ERROR")


def evaluate(lm: Any, tasks: list[str], folder: str | Path, edit: Edit | None = None, limit: int | None = None,
             batch_size: int = 32) -> dict[str, Any]:
    """lm-eval's results for ``tasks`` (from ``folder``) on ``lm`` with ``edit`` applied while it runs:
    {task: {metric: value, metric_stderr: value}}."""
    import lm_eval
    import lm_eval.evaluator as lm_evaluator

    manager = task_manager(folder)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise UserError(f"unknown lm-eval task(s) {unknown} in {str(folder)!r}; it holds {sorted(manager.all_tasks)}")
    try:
        with contextlib.redirect_stderr(stdio.StringIO()):
            manager.load(list(tasks))  # a malformed task or missing data is bad input, found before the model runs
    except Exception as e:  # noqa: BLE001 - lm-eval and datasets raise many kinds
        raise UserError(f"the lm-eval tasks in {str(folder)!r} cannot be loaded: {type(e).__name__}: {e}") from None
    edit = edit or Edit("none")
    with ExitStack() as stack:
        stack.enter_context(_quiet_loggers("lm_eval", "transformers"))
        # lm-eval's environment report runs subprocesses on every call (0.6 s); results carry editbench's provenance
        stack.enter_context(mock.patch.object(lm_evaluator, "add_env_info", lambda *a, **k: None))
        # and its git hash of the working directory (a "fatal: not a git repository" line outside a checkout)
        stack.enter_context(mock.patch.object(lm_evaluator, "get_git_commit_hash", lambda *a, **k: None))
        stack.enter_context(edit.applied(lm))
        model = _hflm_class()(lm, edit.prompt, batch_size=batch_size)
        with torch.no_grad():
            out = lm_eval.simple_evaluate(model=model, tasks=list(tasks), task_manager=manager, limit=limit,
                                          log_samples=False, verbosity="ERROR", bootstrap_iters=1000,
                                          random_seed=0, numpy_random_seed=0, torch_random_seed=0, fewshot_random_seed=0)
    results = {}
    for task in tasks:
        r = out["results"][task]
        results[task] = {k.split(",")[0]: v for k, v in r.items() if "," in k and isinstance(v, int | float)}
    return results


def default_folder() -> Path:
    """The lamp tasks, written into the cache (``$EDITBENCH_CACHE/lm_eval_tasks/v<version>``) when absent."""
    folder = io.cache_dir() / "lm_eval_tasks" / f"v{TASK_VERSION}"
    if not all((folder / f"{t}.yaml").exists() for t in TASKS):
        write_tasks(folder)
    return folder


def collateral(lm: Any, edit: Edit, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """An edit's lm-eval scores on ``lamp_facts`` and ``lamp_perplexity`` beside the unedited LM's (``base``,
    computed when not given), with lm-eval's standard errors."""
    folder = default_folder()
    base = base if base is not None else evaluate(lm, list(COLLATERAL_TASKS), folder)
    return {"edited": evaluate(lm, list(COLLATERAL_TASKS), folder, edit), "unedited": base}


# ---- editbench's own scoring of the same items (what the lm_eval client is checked against) ------------
@torch.no_grad()
def continuation_logprobs(lm: Any, pairs: list[tuple[str, str]], batch_size: int = 64) -> list[float]:
    """Log-probability of each continuation given its context (``context + " " + continuation``), summed over
    the continuation's tokens."""
    tok = lm.tokenizer
    vocab, unk = tok.get_vocab(), tok.unk_token_id
    out = []
    for i in range(0, len(pairs), batch_size):
        rows = [([vocab.get(w, unk) for w in c.split()], [vocab.get(w, unk) for w in x.split()])
                for c, x in pairs[i:i + batch_size]]
        T = max(len(a) + len(b) for a, b in rows)
        ids = torch.full((len(rows), T), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros(len(rows), T, dtype=torch.long)
        for r, (a, b) in enumerate(rows):
            ids[r, :len(a) + len(b)] = torch.tensor(a + b)
            mask[r, :len(a) + len(b)] = 1
        logp = lm(input_ids=ids, attention_mask=mask).logits.float().log_softmax(-1)
        for r, (a, b) in enumerate(rows):
            pos = torch.arange(len(a) - 1, len(a) + len(b) - 1)
            out.append(float(logp[r, pos, torch.tensor(b)].sum()))
    return out


def own_scores(lm: Any, task: str) -> dict[str, float]:
    """editbench's scoring of a task's documents: ``acc`` (multiple choice: the likeliest choice is the gold
    one) or ``word_perplexity``."""
    docs = build_docs(task)
    if task in ("lamp_state", "lamp_facts"):
        pairs = [(d["context"], ch) for d in docs for ch in d["choices"]]
        lp = iter(continuation_logprobs(lm, pairs))
        hits = []
        for d in docs:
            scores = [next(lp) for _ in d["choices"]]
            hits.append(max(range(len(scores)), key=scores.__getitem__) == d["gold"])
        return {"acc": sum(hits) / len(hits)}
    if task == "lamp_perplexity":
        lp = continuation_logprobs(lm, [(d["context"], d["target"]) for d in docs])
        return {"word_perplexity": float(torch.tensor(-sum(lp) / sum(d["words"] for d in docs)).exp())}
    raise UserError(f"editbench scores {task!r} only through lm-eval")
