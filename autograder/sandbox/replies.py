"""What comes back from the sandbox is hostile data: parse it with caps and a strict schema.

A child that runs native code can write any bytes on its result pipe. Nothing here may raise
anything but ``MalformedReplyError`` for them, allocate much for them, or let them carry text
that would break a CSV file, an HTML page, a JSON file or a terminal further on.
"""

from __future__ import annotations

import builtins
import functools
import json
import math
import re
from collections.abc import Sequence

import torch

from autograder.kit.judging import Case, Exercise, Returned
from autograder.sandbox.inside.fingerprint import digest
from autograder.untrusted import clean_text, json_depth

MAX_DEPTH = 8  # the harness writes {"cases": [{"values": [...]}]}: depth 3
MAX_VALUES = 100_000  # per case, as the harness sends them
MAX_DIMS, MAX_SIZE = 8, 1 << 20
# No count in this course comes near; 10**400 is an attack, not an answer.
MAX_INT = 1 << 63
ERROR_CHARS, LINE_CHARS = 300, 80
CASE_KEYS = {"type", "shape", "dtype", "device", "values", "inputs_after"}
CASE_KEYS |= {"error", "cell", "line"}  # an exception: its class and where it arose
# Python's own exceptions: the only classes feedback names. A class that student code made
# can take any name (and any module's), so its name could carry what the code read.
BUILTIN_ERRORS = frozenset(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
)
# What a returned value's class, dtype and device may be called in feedback (see ``_known``).
KNOWN_TYPES = frozenset(
    {
        f"builtins.{name}"
        for name, value in vars(builtins).items()
        if isinstance(value, type)
    }
    | {"builtins.NoneType", "torch.Tensor", "torch.nn.parameter.Parameter"}
    | {f"numpy.{name}" for name in ("ndarray", "float64", "float32", "float16")}
    | {f"numpy.{name}" for name in ("int64", "int32", "bool_", "matrix")}
)
OTHER_TYPE = "other.an object of a class defined in the code"
DTYPES = frozenset(str(v) for v in vars(torch).values() if isinstance(v, torch.dtype))
DEVICES = re.compile(r"(cpu|meta|mps|cuda|xpu)(:[0-9]{1,3})?")
# The harness's RefusedOperatorError: an operator the exercise forbids was reached.
REFUSED = "grader.RefusedOperatorError"
REFUSED_WORDS = "an operator that the grader switches off for this exercise"


class MalformedReplyError(ValueError):
    """The sandbox's reply is not the data it should be (so it was tampered with)."""


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > 19:
        raise MalformedReplyError("a number is out of range")
    return int(digits)


def load(text: str, max_bytes: int) -> object:
    """``json.loads`` with a size cap, a depth cap (the notebooks' own count, which needs no
    recursion) and bounded integers."""
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise MalformedReplyError("the reply is too long")
    if json_depth(text) > MAX_DEPTH:
        raise MalformedReplyError("the reply nests too deep")
    try:
        return json.loads(text, parse_int=_bounded_int)
    except (ValueError, RecursionError) as error:
        raise MalformedReplyError(
            f"the reply is not JSON ({clean_text(error, 80)})"
        ) from None


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedReplyError("values are not numbers")
    if isinstance(value, int) and abs(value) >= MAX_INT:
        raise MalformedReplyError("a number is out of range")
    return float(value)


def quoted_error(data: dict, cells: Sequence[str]) -> str:
    """An exception from the sandbox in the trusted side's words: its class if it is Python's
    own, and the line of the cell where it arose, quoted from the grader's copy of the cell.

    The sandbox sends no message (it could carry hidden inputs out), and even the class and
    the place are the child's claims: an unknown class is not named, an impossible place is
    dropped.
    """
    kind, cell, line = data.get("error"), data.get("cell"), data.get("line")
    if not isinstance(kind, str):
        raise MalformedReplyError("an error is not a class name")
    module, _, name = kind.rpartition(".")
    if kind == REFUSED:
        text = REFUSED_WORDS
    elif module == "builtins" and name in BUILTIN_ERRORS:
        text = name
    else:
        text = "an exception of a class that is not one of Python's own"
    if _is_count(cell) and _is_count(line) and cell < len(cells):
        lines = cells[cell].splitlines()
        if 1 <= line <= len(lines):
            source = clean_text(lines[line - 1].strip(), LINE_CHARS)
            text += f" at line {line}: `{source}`"
    return text


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def not_defined(function: str) -> str:
    """What the harness answers for every case when ``function`` does not exist
    (``harness._run_cases``)."""
    return f"NameError: {function} is not defined"


def parse_case(
    data: object,
    expected_inputs: str | None,
    cells: Sequence[str] = (),
    missing: str | None = None,
) -> Returned:
    """One case of the reply. ``expected_inputs``: the fingerprint of the untouched inputs;
    ``cells``: the cells the job ran (setup, then the student's), to quote an error's line;
    ``missing``: ``not_defined`` of the function graded."""
    if not isinstance(data, dict) or not set(data) <= CASE_KEYS:
        raise MalformedReplyError("a case is not what the harness writes")
    unchanged = True
    after = data.get("inputs_after")
    if expected_inputs is not None:  # a tensor case: did the inputs survive the call?
        # A value needs the fingerprint; an error may come without one (a function that was
        # never defined was never called), and earns nothing either way.
        if not isinstance(after, str) and not (after is None and "error" in data):
            raise MalformedReplyError("a case lacks its inputs' fingerprint")
        unchanged = after is None or after == expected_inputs
    if "error" in data:
        # The one text the harness writes itself, for a function that was never defined, is
        # taken as it is: the grader words that mistake (mistakes.missing_function).
        error = data["error"]
        if error != missing:
            error = quoted_error(data, cells)
        return Returned(
            error=clean_text(error, ERROR_CHARS), inputs_unchanged=unchanged
        )
    shape = data.get("shape")
    if shape is not None and not (
        isinstance(shape, list)
        and len(shape) <= MAX_DIMS
        and all(_is_count(n) and n <= MAX_SIZE for n in shape)
    ):
        raise MalformedReplyError("a shape is not a list of sizes")
    values = data.get("values")
    tensor = None
    if values is not None:
        if not isinstance(values, list) or len(values) > MAX_VALUES:
            raise MalformedReplyError("values are not a list of numbers")
        if shape is None or len(values) != math.prod(shape):
            raise MalformedReplyError("values do not fill the shape")
        tensor = torch.tensor([_number(v) for v in values], dtype=torch.float64)
    texts = {key: data.get(key) for key in ("type", "dtype", "device")}
    if not all(value is None or isinstance(value, str) for value in texts.values()):
        raise MalformedReplyError("a type name is not text")
    return Returned(
        type_name=_known(texts["type"] or "", KNOWN_TYPES, OTHER_TYPE),
        shape=tuple(shape) if shape is not None else None,
        dtype=None if texts["dtype"] is None else _known(texts["dtype"], DTYPES, "?"),
        device=None
        if texts["device"] is None
        else _known(texts["device"], DEVICES, "?"),
        values=tensor,
        inputs_unchanged=unchanged,
    )


def _known(name: str, known: frozenset[str] | re.Pattern, other: str) -> str:
    """``name`` if the grader knows it, else ``other``: the names of what student code
    returned (its class, even a tensor's dtype in a forged reply) are the student's to choose,
    so feedback repeats only names that nothing the student read could have spelled."""
    if isinstance(known, re.Pattern):
        return name if known.fullmatch(name) else other
    return name if name in known else other


def parse_child(
    text: str, ex: Exercise, max_bytes: int, cells: Sequence[str] = ()
) -> tuple[list[Returned], list[str]]:
    """The child's whole reply for exercise ``ex`` (cases in ``ex.cases`` order), and the
    errors its cells raised; ``cells``: the setup and student cells the job ran."""
    reply = load(text, max_bytes)
    if not isinstance(reply, dict) or set(reply) != {"cell_errors", "cases"}:
        raise MalformedReplyError("the reply is not what the harness writes")
    cases, errors = reply["cases"], reply["cell_errors"]
    if not isinstance(cases, list) or len(cases) != len(ex.cases):
        raise MalformedReplyError("wrong number of cases")
    if not isinstance(errors, list) or not all(
        isinstance(e, dict) and set(e) <= {"error", "cell", "line"} for e in errors
    ):
        raise MalformedReplyError("cell errors are not what the harness writes")
    returned = [
        parse_case(
            data, None if case.params else _untouched(case), cells, not_defined(ex.name)
        )
        for data, case in zip(cases, ex.cases, strict=True)
    ]
    return returned, [quoted_error(e, cells) for e in errors[:3]]


@functools.lru_cache(maxsize=4096)
def _untouched(case: Case) -> str:
    """The fingerprint of a case's inputs: the same for every student, so computed once."""
    return digest(*case.inputs())
