"""Messages for the mistakes that leave nothing to grade: an answer cell that is not Python, and a
graded function that was never defined (most often a misspelled name).

Trusted side: the student's text is only parsed here (``compile`` builds bytecode and runs
nothing; its constant folding is size-capped), never executed. The status names what to fix.
"""

from __future__ import annotations

import ast

from autograder.grading.submission import Problem
from autograder.kit.judging import missing_function_message
from autograder.untrusted import clean_text

LINE_CHARS = 200  # of the offending line shown under the message


def syntax_problem(function: str, source: str) -> Problem | None:
    """``syntax-error`` with the line and a caret if the answer cell of ``function`` does not
    compile, as Jupyter would show it; else None."""
    try:
        compile(source, "<cell>", "exec", dont_inherit=True)
    except SyntaxError as error:
        where = f"line {error.lineno}" if error.lineno else "somewhere"
        message = (
            f"{function}: the answer cell is not valid Python ({where}: {error.msg})"
        )
        line = (error.text or "").rstrip("\n")
        if line.strip():
            shown = clean_text(line.expandtabs(4), LINE_CHARS)
            caret = " " * max(0, min((error.offset or 1) - 1, len(shown))) + "^"
            message += f":\n    {shown}\n    {caret}"
        return Problem("syntax-error", message)
    except (
        ValueError,
        RecursionError,
        MemoryError,
    ) as error:  # NUL bytes, absurd nesting
        return Problem(
            "syntax-error",
            f"{function}: the answer cell cannot be read as Python ({type(error).__name__})",
        )
    return None


def defined_names(sources: list[str]) -> list[str]:
    """The names a notebook's cells define at top level (functions, classes, assignments),
    in order: where a misspelled graded name is found."""
    names: list[str] = []
    for source in sources:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.append(node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = (
                    node.targets if isinstance(node, ast.Assign) else [node.target]
                )
                names += [t.id for t in targets if isinstance(t, ast.Name)]
    return list(dict.fromkeys(names))


def missing_function(function: str, sources: list[str]) -> Problem:
    """``missing-function``, with the closest names the student did define."""
    names = [clean_text(name, 80) for name in defined_names(sources)]
    return Problem("missing-function", missing_function_message(function, names))
