"""The one split every error falls on: bad input from the user, or a bug.

A :class:`UserError` is something the person running editbench can fix (an unknown name, a malformed
config, a checkpoint that is not safetensors, a method of theirs that fails): the command line shows its
message as one line and exits with code 2. Every other exception is a bug inside editbench and shows its
traceback (exit code 1).
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input; the message is one line that says what was wrong, with the value, and what to do."""


class UnknownNameError(UserError, LookupError):
    """A name that is not registered (method, task, part, executor, suite, track)."""


class MethodError(UserError, RuntimeError):
    """A method that cannot run as asked (bad config, budget exceeded, non-finite output, ...)."""
