"""What comes back from the sandbox is hostile data: parse it with caps and a strict schema.

A child that runs native code can write any bytes on its result pipe. Nothing here may raise
anything but ``MalformedReplyError`` for them, allocate much for them, or let them carry text
that would break a CSV file, an HTML page, a JSON file or a terminal further on.
"""

from __future__ import annotations

import functools
import json
import math

import torch

from autograder.kit.judging import Case, Exercise, Returned
from autograder.sandbox.inside.fingerprint import digest
from autograder.untrusted import clean_text, json_depth

MAX_DEPTH = 8  # the harness writes {"cases": [{"values": [...]}]}: depth 3
MAX_VALUES = 100_000  # per case, as the harness sends them
MAX_DIMS, MAX_SIZE = 8, 1 << 20
# No count in this course comes near; 10**400 is an attack, not an answer.
MAX_INT = 1 << 63
ERROR_CHARS, NAME_CHARS = 300, 100
CASE_KEYS = {"type", "shape", "dtype", "device", "values", "error", "inputs_after"}


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


def parse_case(data: object, expected_inputs: str | None) -> Returned:
    """One case of the reply. ``expected_inputs``: the fingerprint of the untouched inputs."""
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
        return Returned(
            error=clean_text(data["error"], ERROR_CHARS), inputs_unchanged=unchanged
        )
    shape = data.get("shape")
    if shape is not None and not (
        isinstance(shape, list)
        and len(shape) <= MAX_DIMS
        and all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_SIZE
            for n in shape
        )
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
        type_name=clean_text(texts["type"] or "", NAME_CHARS),
        shape=tuple(shape) if shape is not None else None,
        dtype=clean_text(texts["dtype"], 40) if texts["dtype"] is not None else None,
        device=clean_text(texts["device"], 40) if texts["device"] is not None else None,
        values=tensor,
        inputs_unchanged=unchanged,
    )


def parse_child(
    text: str, ex: Exercise, max_bytes: int
) -> tuple[list[Returned], list[str]]:
    """The child's whole reply for exercise ``ex`` (cases in ``ex.cases`` order), and the
    errors its cells raised."""
    reply = load(text, max_bytes)
    if not isinstance(reply, dict) or set(reply) != {"cell_errors", "cases"}:
        raise MalformedReplyError("the reply is not what the harness writes")
    cases, errors = reply["cases"], reply["cell_errors"]
    if not isinstance(cases, list) or len(cases) != len(ex.cases):
        raise MalformedReplyError("wrong number of cases")
    if not isinstance(errors, list) or not all(isinstance(e, str) for e in errors):
        raise MalformedReplyError("cell errors are not text")
    returned = [
        parse_case(data, None if case.params else _untouched(case))
        for data, case in zip(cases, ex.cases, strict=True)
    ]
    return returned, [clean_text(e, ERROR_CHARS) for e in errors[:3]]


@functools.lru_cache(maxsize=4096)
def _untouched(case: Case) -> str:
    """The fingerprint of a case's inputs: the same for every student, so computed once."""
    return digest(*case.inputs())
