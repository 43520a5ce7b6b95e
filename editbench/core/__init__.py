"""The modality-neutral core: the method contract, edits, hooks, one registry type, statistics and the
one atomic writer. It knows no lamp, no GAN and no tokenizer; every track and every method builds on it.
"""

from .edit import Cost, Edit
from .errors import MethodError, UnknownNameError, UserError
from .hooks import HookPoint, capture, hook_points, intervene
from .method import EVERY_TRACK, EVIDENCE_KINDS, FAMILIES, Budget, Evaluator, Evidence, Family, Method, MethodConfig
from .registry import Registry, RegistryError
from .search import Choice, Float, LogFloat, LogInt
from .threads import one_thread

__all__ = [
    "EVERY_TRACK", "EVIDENCE_KINDS", "FAMILIES", "Budget", "Choice", "Cost", "Edit", "Evaluator", "Evidence", "Family",
    "Float", "HookPoint", "LogFloat", "LogInt", "Method", "MethodConfig", "MethodError", "Registry", "RegistryError",
    "UnknownNameError", "UserError", "capture", "hook_points", "intervene", "one_thread",
]
