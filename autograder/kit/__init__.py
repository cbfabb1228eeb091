"""The check kit: what a student's notebook runs to check an answer, and nothing that gives one.

The grader's judging and policy (``judging.py``, ``policy.py``), the notebook checks
(``notebook.py``) and, in a release, ``data.json``: the visible and practice inputs, and the
answers to those inputs that are not public computations (counts, composed kernels). The
instructor's package builds it (``autograder/course_build/kit_build.py``) and every graded
release notebook carries it in a locked cell, so the checks work wherever the notebook runs: a
course hub, a bare Jupyter, Colab. ``tests/kit/test_kit.py`` inspects it for solutions. It
imports nothing of the package (it travels alone, as ``channels_kit``), only itself, relatively.
"""

from __future__ import annotations

import json
from importlib import resources

import torch

from .notebook import Kit, user_namespace

__all__ = ["Kit", "practice", "visible_test", "written"]

_kit: Kit | None = None


def _loaded() -> Kit:
    global _kit
    if _kit is None:
        data = resources.files(__name__).joinpath("data.json").read_text()
        _kit = Kit.from_data(json.loads(data))
    return _kit


def _function(name: str):
    """The notebook's function ``name``, or the message a misspelled name deserves."""
    namespace = user_namespace()
    fn = namespace.get(name)
    if callable(fn):
        return fn, ""
    return None, _loaded().missing(name, namespace)


def practice(name: str, device: torch.device | str = "cpu") -> None:
    """The grader's rubric and diagnosis for the notebook's ``name`` on practice inputs."""
    fn, missing = _function(name)
    if fn is None:
        print(f"FAIL {missing}")
        return
    _loaded().practice(name, fn, device)


def visible_test(name: str, device: torch.device | str = "cpu") -> None:
    """The visible test of the notebook's ``name``: AssertionError with the grader's diagnosis."""
    fn, missing = _function(name)
    if fn is None:
        raise AssertionError(missing)
    _loaded().visible_test(name, fn, device)


def written(name: str, device: torch.device | str = "cpu") -> bool:
    """Whether the notebook's ``name`` is written: a cell that shows it at work runs it only
    then (``if written("corr2d_multi_in"): ...``), and says in one line why it did not."""
    fn, missing = _function(name)
    if fn is None:
        print(f"FAIL {missing}")
        return False
    return _loaded().written(name, fn, device)
