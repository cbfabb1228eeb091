"""The checks a student runs in the notebook: the visible tests and the practice check.

Both judge live calls with the grader's own code (``judging``, ``policy``) on inputs the kit
carries as data (``data.json``: the visible and practice inputs, and for counts and composed
kernels their answers), so their messages are the feedback page's. Neither decides a grade: the
sandboxed grader does, on inputs of its own that nobody outside it can reproduce.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import io
import os
import textwrap
from collections.abc import Callable
from itertools import zip_longest

import torch

from .judging import (
    NOT_WRITTEN,
    Answers,
    Case,
    Exercise,
    Returned,
    RubricItem,
    Stored,
    judge,
    missing_function_message,
    modified_input_message,
    not_written,
    policy_outcome,
    score_exercise,
)
from .policy import CLEAN, check_policy, uses_matrix_product

# A worked example small enough to print expected and returned values side by side.
SIDE_BY_SIDE_MAX = 36
# The first line of the cell that carries the kit (``course_build/kit_build.py`` writes it).
KIT_TITLE = "#@title The course's check kit: run it, no need to read it"


def _tensor(data: dict | None) -> torch.Tensor | None:
    if data is None:
        return None
    return torch.tensor(data["values"], dtype=torch.float64).reshape(data["shape"])


def _value(data):
    """A stored answer: a tensor ({"shape", "values"}), an int, or None."""
    return _tensor(data) if isinstance(data, dict) else data


@dataclasses.dataclass(frozen=True)
class Kit:
    """The exercises as the kit knows them, and each notebook's own cells (by hash)."""

    exercises: dict[str, Exercise]
    practice_cases: dict[str, tuple[Case, ...]]
    release_cells: dict[str, frozenset[str]]
    conv_policy: str = "zero"
    release_names: dict[str, frozenset[str]] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_data(cls, data: dict) -> Kit:
        stored: dict[tuple[str, Case], Stored] = {}
        for ex in data["exercises"]:
            for answer in ex["answers"]:
                stored[(ex["name"], Case.from_data(answer["case"]))] = Stored(
                    _value(answer["expected"]),
                    _tensor(answer.get("magnitude")),
                    {why: _value(v) for why, v in answer["wrong"].items()},
                )
        answers = Answers(stored)
        exercises, practice = {}, {}
        for ex in data["exercises"]:
            exercises[ex["name"]] = Exercise(
                name=ex["name"],
                section=ex["section"],
                notebook=ex["notebook"],
                kernel_dims=ex["kernel_dims"],
                cases=(),
                rubric=tuple(RubricItem(**item) for item in ex["rubric"]),
                stand_ins=tuple(ex["stand_ins"]),
                kind=ex["kind"],
                arg_names=tuple(ex["arg_names"]),
                forbidden=frozenset(ex["forbidden"]),
                visible=tuple(map(Case.from_data, ex["visible"])),
                answers=answers,
                product_tip=ex.get("product_tip", ""),
            )
            practice[ex["name"]] = tuple(map(Case.from_data, ex["practice"]))
        return cls(
            exercises,
            practice,
            {nb: frozenset(hashes) for nb, hashes in data["release_cells"].items()},
            data.get("conv_policy", "zero"),
            {nb: frozenset(names) for nb, names in data["release_names"].items()},
        )

    def missing(self, name: str, namespace: dict) -> str:
        """The grader's message for a graded function not defined in ``namespace``, with the
        closest names the student defined (not those the notebook defines)."""
        given = self.release_names.get(self.exercises[name].notebook, frozenset())
        names = [
            n
            for n, value in namespace.items()
            if callable(value) and not n.startswith("_") and n not in given
        ]
        return missing_function_message(name, names)

    def practice(
        self,
        name: str,
        fn: Callable,
        device: torch.device | str = "cpu",
        sources: list[str] | None = None,
    ) -> None:
        """Print the grader's verdict on each rubric item for practice inputs. Never raises."""
        ex = dataclasses.replace(self.exercises[name], cases=self.practice_cases[name])
        calls = [call_on(case, fn, device) for case in ex.cases]
        if not_written(ex.cases, [got for got, _ in calls]):
            total = sum(item.points for item in ex.rubric)
            print(f"{name}: {NOT_WRITTEN}: 0 of {total:g} points on practice inputs.")
            return
        items, notes = score_exercise(
            ex,
            [got for got, _ in calls],
            policy_verdict=self._policy(ex, fn, sources),
            conv_policy=self.conv_policy,
            input_device=calls[0][1],  # where the inputs were: one device for all
        )
        for item in items:
            mark = {"passed": "ok  ", "not-checked": "--  "}.get(item.status, "FAIL")
            print(f"{mark} {item.item} ({item.max_score:g} pt)")
            if item.message:
                print(f"     {item.message}")
        for note in notes:
            print("Note:", note)
        earned = sum(item.score for item in items)
        total = sum(item.max_score for item in items)
        print(
            f"{name}: {earned:g} of {total:g} points on practice inputs. Your grade comes "
            "from the grader's own inputs, which this check does not use."
        )
        if ex.product_tip and not self._uses_matrix_product(ex, fn, sources):
            print(ex.product_tip)

    def written(
        self, name: str, fn: Callable, device: torch.device | str = "cpu"
    ) -> bool:
        """False, with one line saying so, while ``fn`` is not written yet (it raises
        NotImplementedError on every visible input); else True. A cell that shows the
        function at work asks first, so that Run All goes on past work not started."""
        if self._not_written(self.exercises[name], fn, device):
            print(f"{name}: {NOT_WRITTEN}; this cell runs it once it is written.")
            return False
        return True

    def _not_written(
        self, ex: Exercise, fn: Callable, device: torch.device | str
    ) -> bool:
        """Whether ``fn`` raises NotImplementedError on every visible input that should
        compute something (its prints, if any, kept out of the cell: it runs again)."""
        cases = [case for case in ex.visible if "invalid" not in case.tags]
        with (
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            return not_written(cases, [call_on(case, fn, device)[0] for case in cases])

    def visible_test(
        self,
        name: str,
        fn: Callable,
        device: torch.device | str = "cpu",
        sources: list[str] | None = None,
    ) -> None:
        """Run the visible inputs and the course rules; raise AssertionError with the grader's
        diagnosis unless all pass, so that Run All stops here with the message to act on.

        A function not written yet (the stub as released) is told so in one line, and Run All
        goes on, except where nbgrader runs the notebook to grade or validate it: there the
        cell fails, since nbgrader scores a test cell by whether it raises."""
        ex = self.exercises[name]
        if self._not_written(ex, fn, device):
            line = (
                f"{name}, visible tests: {NOT_WRITTEN}. Write it above, run its cell, "
                "then this one."
            )
            if graded_by_nbgrader():
                raise AssertionError(line)
            print(line)
            return
        lines, failed, notes = [], False, []
        for case in ex.visible:
            ok, message, case_notes, changed = _visible_case(ex, case, fn, device)
            failed |= not ok or changed
            lines.append(("ok   " if ok else "FAIL ") + message)
            if changed:  # a rubric item of its own, whether or not the values are right
                lines.append("FAIL " + modified_input_message(ex, case))
            notes += case_notes
        if ex.forbidden:
            verdict = self._policy(ex, fn, sources)
            if verdict.kind == CLEAN:
                lines.append(f"ok   the course rules: {_rules(ex)}")
            else:
                _, message = policy_outcome(ex, verdict, self.conv_policy == "zero")
                failed |= self.conv_policy == "zero"
                lines.append(
                    ("FAIL " if self.conv_policy == "zero" else "note ") + message
                )
        report = "\n".join([f"{name}, visible tests:", *lines])
        report += "".join(f"\nNote: {note}" for note in dict.fromkeys(notes))
        if failed:
            raise AssertionError(
                f"\n{report}\nThe grader would take points for this too. Fix the first FAIL "
                "and run this cell again."
            )
        print(report)
        print(
            "Visible tests pass. The grade also counts hidden inputs: the practice check "
            "below tries inputs like them."
        )

    def _uses_matrix_product(
        self, ex: Exercise, fn: Callable, sources: list[str] | None
    ) -> bool:
        """Whether ``fn`` reaches a matrix product, read from the student's cells as the
        course policy is (``_policy``)."""
        own, given = (sources, []) if sources is not None else self._cells(ex.notebook)
        if not own:
            return uses_matrix_product([_source(fn)], ex.name)
        return uses_matrix_product(own, ex.name, preamble=given)

    def _policy(self, ex: Exercise, fn: Callable, sources: list[str] | None):
        """The course policy read from the student's cells, as the grader reads them; where
        there are none (no notebook kernel: a script, a test), from ``fn``'s own source."""
        own, given = (sources, []) if sources is not None else self._cells(ex.notebook)
        if not own:
            return check_policy([_source(fn)], ex.forbidden)
        return check_policy(own, ex.forbidden, function=ex.name, preamble=given)

    def _cells(self, notebook: str) -> tuple[list[str], list[str]]:
        """(the student's cells, the notebook's own) from this kernel's input history."""
        history = list(user_namespace().get("In", []))
        given = self.release_cells.get(notebook, frozenset())

        def ours(cell: str) -> bool:
            return cell_hash(cell) in given or cell.startswith(KIT_TITLE)

        cells = [cell for cell in history if cell]
        return [c for c in cells if not ours(c)], [c for c in cells if ours(c)]


def graded_by_nbgrader() -> bool:
    """Whether nbgrader runs this notebook (``autograde`` or ``validate``, which set
    NBGRADER_EXECUTION) rather than a student's Run All."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def user_namespace() -> dict:
    """The notebook kernel's namespace (empty outside IPython: a script, a test)."""
    try:
        from IPython import get_ipython

        return get_ipython().user_ns
    except (ImportError, AttributeError):
        return {}


def cell_hash(source: str) -> str:
    """How the kit recognises the notebook's own cells (the kernel may add a newline)."""
    return hashlib.sha256(source.strip().encode()).hexdigest()


def _rules(ex: Exercise) -> str:
    unfold = " or F.unfold" if "*.unfold" in ex.forbidden else ""
    return f"no call to one of PyTorch's convolutions{unfold} in {ex.name}"


def _source(fn: Callable) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):  # defined somewhere without source: nothing to inspect
        return ""


def call_on(
    case: Case, fn: Callable, device: torch.device | str
) -> tuple[Returned, str]:
    """Call ``fn`` on a case here: what it returned, and where the inputs were."""
    if case.params:
        return Returned.from_count(fn, dict(case.params)), "cpu"
    X, K = case.inputs(device)
    return Returned.from_call(fn, X, K), str(X.device)


def _visible_case(
    ex: Exercise, case: Case, fn: Callable, device: torch.device | str
) -> tuple[bool, str, tuple[str, ...], bool]:
    """(values right, what was tried and what happened, notes, inputs changed in place) for
    one visible input."""
    if "invalid" in case.tags and not case.params:
        X, K = case.inputs(device)
        tried = f"{ex.name} on {case.describe(ex.arg_names)} must raise ValueError"
        try:
            fn(X, K)
        except ValueError:
            return True, tried + ": it does.", (), False
        except Exception as error:
            return (
                False,
                f"{tried}; it raised {type(error).__name__}: {error}",
                (),
                False,
            )
        return False, f"{tried}; it returned a result. Keep the shape check.", (), False
    got, on = call_on(case, fn, device)
    verdict = judge(ex, case, got, input_device=on)
    changed = not got.inputs_unchanged
    if not verdict.correct:
        return False, verdict.message + _side_by_side(ex, case, got), (), changed
    return True, verdict.message, verdict.notes, changed


def _side_by_side(ex: Exercise, case: Case, got: Returned) -> str:
    """Expected and returned values next to each other, for a small worked example."""
    if "example" not in case.tags:
        return ""
    expected = ex.answers.expected(ex, case)
    if ex.kind == "count":
        return f"\n     expected {expected}, got {_count_text(got)}"
    if got.values is None or got.values.numel() > SIDE_BY_SIDE_MAX:
        return ""
    if got.shape is None or got.values.numel() != expected.numel():
        return f"\n     expected shape {tuple(expected.shape)}, values:\n" + _indent(
            _numbers(expected)
        )
    left = _numbers(expected).splitlines()
    right = _numbers(got.values.reshape(got.shape)).splitlines()
    width = max(map(len, [*left, "expected"])) + 4
    rows = [f"{'expected'.ljust(width)}got"]
    rows += [f"{a.ljust(width)}{b}" for a, b in zip_longest(left, right, fillvalue="")]
    return "\n" + _indent("\n".join(rows))


def _count_text(got: Returned) -> str:
    if got.error is not None:
        return f"an error ({got.error})"
    if got.values is None:
        return got.type_name.rsplit(".", 1)[-1]
    value = got.values.item()
    return str(int(value)) if value.is_integer() else str(value)


def _numbers(t: torch.Tensor) -> str:
    """A tensor's values as rows of numbers, one block per leading index ([0], [1], ...)."""
    t = t.to(torch.float64)
    if t.dim() < 2:
        return _row(t.reshape(-1))
    blocks = t.reshape(-1, *t.shape[-2:])
    lines = []
    for i, block in enumerate(blocks):
        if len(blocks) > 1:
            lines.append(f"[{i}]")
        lines += [_row(row) for row in block]
    return "\n".join(lines)


def _row(values: torch.Tensor) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values.tolist()) + "]"


def _indent(text: str) -> str:
    return textwrap.indent(text, "     ")
