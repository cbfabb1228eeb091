"""Course policy decided from the student's source alone: nothing the sandbox reports has a say.

A hand-written function may not call a library routine that does the exercise for it (torch's
convolution; for the matmul exercise also the library's im2col). ``check_policy`` reads every
cell the student wrote in the notebook, resolves names through imports and aliases to dotted paths
(``xcorr`` -> ``torch.nn.functional.conv2d``) and follows the graded function to the code it can
reach (helpers, aliases, monkey-patches), so a routine that another exercise may use, or a scratch
cell that compares with ``F.conv2d``, does not count against it. What reading cannot settle (a
name computed at run time, ``exec``, a module passed around as a value) is ``needs-review``: an
instructor looks. Pure: it parses, never runs or imports, the student's code.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import translate

CLEAN, FORBIDDEN, NEEDS_REVIEW = "clean", "forbidden", "needs-review"


@dataclass(frozen=True)
class PolicyVerdict:
    """``clean``, ``forbidden`` (``found``: the routine) or ``needs-review`` (the construct)."""

    kind: str = CLEAN
    found: str = ""


CLEAN_VERDICT = PolicyVerdict()

# A course answer is a few kB and a few levels deep; far more is not worth the trusted process's
# time or stack (a 5,000-term sum already makes ``ast.parse`` raise RecursionError).
MAX_SOURCE_CHARS = 200_000
MAX_DEPTH = 100
MAX_FOUND_CHARS = 80

# What the sandbox's namespace holds before any cell runs (harness.py), as dotted paths.
DEFAULT_ALIASES: Mapping[str, str] = {
    "torch": "torch",
    "F": "torch.nn.functional",
    "nn": "torch.nn",
    "d2l": "d2l.torch",
}

# Constructs that reach code or attributes by a name computed at run time, or change what other
# code calls, so that reading the source cannot tell what runs: (where, pattern, why). Where:
# "name" is a bare name, "attr" an attribute's (or a def's) name, "path" a dotted path after
# imports and aliases (fnmatch patterns). Found anywhere in the student's cells, not only in the
# code the graded function reaches: they act at a distance.
DYNAMIC: tuple[tuple[str, str, str], ...] = (
    # getattr, setattr and delattr with a constant name are read as that attribute instead.
    ("name", "getattr", "looks up an attribute by a computed name"),
    ("name", "setattr", "sets an attribute by a computed name"),
    ("name", "delattr", "deletes an attribute by a computed name"),
    ("name", "exec", "runs code written in a string"),
    ("name", "eval", "runs code written in a string"),
    ("name", "compile", "compiles code written in a string"),
    ("name", "__import__", "imports a module named by a string"),
    ("name", "globals", "reads or rebinds names through a dictionary"),
    ("name", "locals", "reads or rebinds names through a dictionary"),
    ("name", "vars", "reads or rebinds names through a dictionary"),
    ("name", "__builtins__", "reaches or replaces the builtins"),
    ("attr", "__dict__", "reads or changes a namespace through its dictionary"),
    ("attr", "__getattribute__", "looks up an attribute by string"),
    ("attr", "__getattr__", "looks up an attribute by string"),
    ("attr", "__setattr__", "sets an attribute by string"),
    ("attr", "__delattr__", "deletes an attribute by string"),
    ("attr", "__builtins__", "reaches or replaces the builtins"),
    ("attr", "__globals__", "reaches another module's names"),
    ("attr", "__loader__", "imports a module named by a string"),
    ("attr", "__spec__", "imports a module named by a string"),
    ("attr", "__code__", "reads or swaps a function's code"),
    ("attr", "__closure__", "reads or swaps a function's variables"),
    ("attr", "__subclasses__", "walks the class hierarchy to any class"),
    ("attr", "__mro__", "walks the class hierarchy to any class"),
    ("attr", "__bases__", "walks the class hierarchy to any class"),
    ("attr", "__base__", "walks the class hierarchy to any class"),
    ("attr", "__torch_function__", "intercepts torch's calls, to run anything"),
    ("attr", "__torch_dispatch__", "intercepts torch's operators, to run anything"),
    ("attr", "f_globals", "reads or changes the variables of other running code"),
    ("attr", "f_locals", "reads or changes the variables of other running code"),
    ("attr", "f_back", "reads or changes the variables of other running code"),
    ("attr", "tb_frame", "reads or changes the variables of other running code"),
    ("attr", "gi_frame", "reads or changes the variables of other running code"),
    ("path", "*importlib*", "imports a module named by a string"),
    ("path", "*builtins*", "reaches or replaces the builtins"),
    ("path", "*ctypes*", "reaches memory and C functions directly"),
    ("path", "*cffi*", "reaches memory and C functions directly"),
    ("path", "*sys.modules*", "reaches any imported module by name"),
    ("path", "*_getframe", "reads or changes the variables of other running code"),
    ("path", "*settrace", "runs a hook that can change the variables of other code"),
    ("path", "*setprofile", "runs a hook that can change the variables of other code"),
    ("path", "*hook*", "registers code that the library calls later"),
    ("path", "*meta_path*", "registers code that imports run"),
    ("path", "gc", "finds any live object"),
    ("path", "gc.*", "finds any live object"),
    ("path", "inspect*", "reaches the frames, globals and source of any object"),
    ("path", "operator.attrgetter", "looks up attributes by string"),
    ("path", "operator.methodcaller", "calls methods by string"),
    ("path", "*pickle*", "rebuilds any function from its name"),
    ("path", "dill*", "rebuilds any function from its name"),
    ("path", "copyreg*", "rebuilds any function from its name"),
    ("path", "marshal*", "rebuilds code objects from bytes"),
    ("path", "types.FunctionType", "builds a function from a code object"),
    ("path", "types.CodeType", "builds a code object"),
    ("path", "runpy*", "runs a module named by a string"),
    ("path", "pkgutil*", "imports modules named by strings"),
    ("path", "zipimport*", "imports modules named by strings"),
    ("path", "code", "runs code written in a string"),
    ("path", "code.*", "runs code written in a string"),
    ("path", "codeop*", "compiles code written in a string"),
    ("path", "torch.load", "unpickles: rebuilds any function from its name"),
    ("path", "torch.hub*", "loads code from files or the network"),
    ("path", "torch.jit*", "compiles code written in strings (TorchScript)"),
    ("path", "torch.package*", "imports code packaged as bytes"),
    ("path", "torch.fx*", "builds and runs code from a graph of names"),
    ("path", "torch.library*", "replaces torch's own operators"),
    ("path", "torch.overrides*", "intercepts torch's calls, to run anything"),
    ("path", "torch.utils._python_dispatch*", "intercepts torch's operators"),
    ("path", "torch.utils.cpp_extension*", "compiles C++ at run time"),
    ("path", "torch.ops*", "calls torch's operators by their internal names"),
    ("path", "torch._*", "uses torch's private internals"),
)

# Modules whose attributes include a forbidden routine (directly or re-exported): passed around
# as a value (``[F][0].unfold``), what they call can no longer be read from the source. Modules
# bound by ``import x`` / ``import x as y`` count as well.
NAMESPACES = (
    "torch",
    "torch.nn",
    "torch.nn.functional",
    "torch.functional",
    "torch.nn.grad",
    "torch.nn.modules*",
    "*.F",
    "*.functional",
    "*.nn",
    "d2l",
    "d2l.torch",
)

# Bounds on following aliases, beyond which the code needs review (no honest code comes near).
_MAX_PATHS = 16  # import paths one name stands for
_MAX_ALIAS_ROUNDS = 50  # rounds of aliases of aliases
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


class _UncheckableError(Exception):
    """The code cannot be checked at all; ``verdict`` says why."""

    def __init__(self, verdict: PolicyVerdict) -> None:
        super().__init__(verdict.found)
        self.verdict = verdict


def _review(what: str) -> PolicyVerdict:
    return PolicyVerdict(NEEDS_REVIEW, _printable(what))


def _printable(text: str) -> str:
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= MAX_FOUND_CHARS else text[: MAX_FOUND_CHARS - 3] + "..."


def check_policy(
    sources: Sequence[str],
    forbidden: frozenset[str],
    *,
    function: str | None = None,
    preamble: Sequence[str] = (),
    refused_at_run_time: bool = False,
) -> PolicyVerdict:
    """May ``function``, as the student's cells ``sources`` define it, be graded as by hand?

    ``forbidden`` holds plain names (``conv2d``: any name or attribute so called), attribute
    names (``.correlate``: any attribute so called, whatever it belongs to), fnmatch patterns
    over resolved paths (``*.unfold``: any other entry with a dot or a star) and exceptions to
    those (``!torch.Tensor.unfold``).
    ``preamble`` is trusted code that runs first (the release's imports): only its imports and
    aliases are read. Without ``function``, all of ``sources`` counts.
    ``refused_at_run_time``: the code runs where every torch routine ``forbidden`` names is
    refused by PyTorch's dispatcher and torch keeps no copy of them in Python (the grader's
    sandbox, for the convolutions; not for im2col, which ``torch._decomp`` has in Python), so
    an attribute of torch looked up by a computed name (``getattr(torch, dtype_name)``) cannot
    compute the answer and needs no review. Never raises.
    """
    if not forbidden:
        return CLEAN_VERDICT
    try:
        return _check(sources, forbidden, function, preamble, refused_at_run_time)
    except _UncheckableError as refusal:
        return refusal.verdict
    # A construct this reader did not foresee: fail closed, a person looks.
    except Exception as error:
        return _review(f"code the grader could not analyse ({type(error).__name__})")


# Routines that multiply matrices, by their own name, whatever they belong to: torch's and
# NumPy's functions, a tensor's methods, and F.linear (a product with a transposed matrix).
MATRIX_PRODUCTS = frozenset(
    {
        *("matmul", "mm", "bmm", "mv", "dot", "vdot", "inner", "tensordot", "einsum"),
        *("addmm", "addbmm", "baddbmm", "addmv", "linear", "multi_dot", "chain_matmul"),
        *("__matmul__", "__rmatmul__"),
    }
)


def uses_matrix_product(
    sources: Sequence[str], function: str, preamble: Sequence[str] = ()
) -> bool:
    """Does ``function``, as the student's cells ``sources`` define it, reach a matrix product:
    ``@``, or a routine of ``MATRIX_PRODUCTS`` (``torch.mm``, ``torch.einsum``, ``X.matmul``,
    ``from torch import einsum``), in its own code or in the helpers it calls?

    For the practice check's tip only, never a grade. A reading that fails answers True: a
    tip wrongly left out costs nothing, a tip wrongly given misleads.
    """
    try:
        program = _program(tuple(sources), tuple(preamble))
        for statement in program.live_statements(function):
            for node in ast.walk(statement):
                if isinstance(node, ast.BinOp | ast.AugAssign) and isinstance(
                    node.op, ast.MatMult
                ):
                    return True
                if isinstance(node, ast.Attribute) and node.attr in MATRIX_PRODUCTS:
                    return True
                if isinstance(node, ast.Name) and any(
                    path.rsplit(".", 1)[-1] in MATRIX_PRODUCTS
                    for path in program.resolve(node)
                ):
                    return True
    except Exception:
        return True
    return False


def student_sources(nb, release_nb) -> list[str]:
    """Every code cell the student wrote in ``nb``, in order: answer cells and added cells.

    All answer cells of the notebook count (an alias bound in one serves another), and the cells
    the student added; locked cells are the instructor's, whatever the submission shows (the
    sandbox runs the release's copy), so their ``import torch.nn.functional as F`` is not held
    against anyone.
    """
    release = {_key(cell, "id"): cell for cell in release_nb.cells}
    answers = [cell for cell in release_nb.cells if _nbgrader(cell).get("solution")]
    answer_ids = {_key(_nbgrader(cell), "grade_id") for cell in answers} - {None}
    locked = {_text(cell) for cell in release_nb.cells if cell not in answers}
    sources = []
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        if (
            _key(cell, "id") is None
        ):  # nbformat < 4.5: a locked cell is one kept verbatim
            ours = _text(cell) not in locked
        else:
            given = release.get(_key(cell, "id"))
            ours = (
                given is None
                or given in answers
                or _key(_nbgrader(cell), "grade_id") in answer_ids
            )
        if ours:
            sources.append(_text(cell))
    return sources


def _key(mapping, name: str) -> str | None:
    """A string field of a cell or of its metadata (anything else counts as missing)."""
    value = mapping.get(name)
    return value if isinstance(value, str) else None


def _text(cell) -> str:
    source = cell.get("source", "")
    if isinstance(source, list | tuple):
        return "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def _nbgrader(cell) -> dict:
    meta = cell.get("metadata", {})
    meta = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return meta if isinstance(meta, dict) else {}


def _check(
    sources: Sequence[str],
    forbidden: frozenset[str],
    function: str | None,
    preamble: Sequence[str],
    lenient: bool = False,
) -> PolicyVerdict:
    size = sum(len(source) for source in sources)
    if size > MAX_SOURCE_CHARS:
        raise _UncheckableError(
            _review(f"{size:,d} characters of code, more than the grader reads")
        )
    program = _program(tuple(sources), tuple(preamble))
    trees = program.trees
    live = program.live_statements(function)
    matcher = _Matcher(forbidden)
    for statement in live:
        hit = program.first_forbidden(statement, matcher)
        if hit:
            return PolicyVerdict(FORBIDDEN, _printable(hit))
    # Every statement, live or not: a routine handed to a call (``keep(F.conv2d)``) may be
    # stored where no name the reading follows says so, and read back later.
    for tree in trees:
        hit = program.first_passed(tree, matcher)
        if hit:
            return PolicyVerdict(FORBIDDEN, _printable(hit))
    for tree in trees:
        construct = program.first_dynamic(tree, lenient)
        if construct:
            return _review(construct)
    for statement in live:
        escaped = program.first_escape(statement, lenient)
        if escaped:
            return _review(f"the module {escaped} passed around as a value")
    return CLEAN_VERDICT


@functools.lru_cache(maxsize=4)
def _program(sources: tuple[str, ...], preamble: tuple[str, ...]) -> _Program:
    """The cells read once for all the functions of a notebook (five in the exercises')."""
    trees = [tree for tree in map(_parse, sources) if tree is not None]
    trusted = [tree for tree in map(_parse_quietly, preamble) if tree is not None]
    return _Program(trees, trusted)


def _parse(source: str) -> ast.Module | None:
    """The cell's tree; None for a cell that does not compile (so it does not run either)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # not a policy matter: the sandbox reports it, and nothing ran
        return None
    except (RecursionError, MemoryError, ValueError) as error:
        raise _UncheckableError(
            _review(
                f"code too deeply nested or too large to check ({type(error).__name__})"
            )
        ) from None
    if _depth(tree) > MAX_DEPTH:
        raise _UncheckableError(
            _review(f"code nested more than {MAX_DEPTH} levels deep")
        )
    return tree


def _parse_quietly(source: str) -> ast.Module | None:
    try:
        return _parse(source)
    except _UncheckableError:
        return None


def _depth(tree: ast.AST) -> int:
    """How deep the tree goes, without recursion (the reader below recurses only after this)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


class _Matcher:
    """The exercise's forbidden set: plain names, path patterns, and exceptions to the patterns."""

    def __init__(self, forbidden: Iterable[str]) -> None:
        entries = set(forbidden)
        exceptions = {e for e in entries if e.startswith("!")}
        attributes = {e for e in entries if e.startswith(".")}
        patterns = {
            e for e in entries - exceptions - attributes if "." in e or "*" in e
        }
        self.names = entries - exceptions - attributes - patterns
        self.attributes = {e[1:] for e in attributes}
        self.patterns = _any_of(patterns)
        self.allowed = _any_of(e[1:] for e in exceptions)

    def hit(
        self, names: Iterable[str], paths: Iterable[str], attribute: str = ""
    ) -> str | None:
        """The first forbidden path (or plain name) among a node's names and resolved paths;
        ``attribute``: the name of the attribute the node reads, if it reads one."""
        for path in sorted(paths):
            if self.names & set(path.split(".")):
                return path
            if self.patterns.match(path) and not self.allowed.match(path):
                return path
        if attribute in self.attributes:
            return f"an attribute named {attribute}"
        return next((name for name in names if name in self.names), None)


@dataclass
class _Statement:
    """One top-level statement of a cell, and how it touches the notebook's global names."""

    node: ast.stmt
    # Global names it (re)binds, calls (f(...)) and reads otherwise.
    binds: set[str] = field(default_factory=set)
    calls: set[str] = field(default_factory=set)
    uses: set[str] = field(default_factory=set)
    # Global names it binds to something other than an import path (so not a module).
    other_binds: set[str] = field(default_factory=set)
    # Sets or deletes an attribute (or a library's table entry): may change what others call.
    patches: bool = False


@dataclass
class _Scope:
    kind: str  # module, function, class or comprehension
    parent: _Scope | None
    names: set[str] = field(default_factory=set)
    declared_global: set[str] = field(default_factory=set)

    def reads_global(self, name: str) -> bool:
        scope: _Scope | None = self
        while scope is not None and scope.kind != "module":
            if name in scope.declared_global:
                return True
            if name in scope.names and (scope.kind != "class" or scope is self):
                return False
            scope = scope.parent
        return True

    def binds_global(self, name: str) -> bool:
        scope: _Scope | None = self
        while scope is not None and scope.kind == "comprehension":  # := binds outside
            scope = scope.parent
        return scope is None or scope.kind == "module" or name in scope.declared_global


class _Program:
    """The student's cells as one module: aliases, statements, and what each can reach."""

    def __init__(self, trees: list[ast.Module], trusted: list[ast.Module]) -> None:
        # Kept alive, so that the id() of each of their nodes stays that node's.
        self.trees, self.trusted = trees, trusted
        # id() of nodes by role: f in f(...); F in F.unfold and in getattr(F, "pad"); F in
        # G = F; getattr in getattr(F, "pad"); G in G = F when F is an import path.
        self.called: set[int] = set()
        self.bases: set[int] = set()
        self.assigned: set[int] = set()
        self.literal_lookups: set[int] = set()
        self.alias_targets: set[int] = set()
        self.modules: set[str] = set(NAMESPACES)  # paths known to be modules
        self.aliases: dict[str, set[str]] = {n: {p} for n, p in DEFAULT_ALIASES.items()}
        self.stars: set[str] = set()
        self.bound_anywhere: set[str] = set()
        # Names local to a function or comprehension (Python's scoping): id() of each Name or
        # import alias node -> id() of the scope that owns it, and the paths those locals hold.
        # A local that shadows an alias (CS231n's ``F, C, HH, WW = w.shape``) is that local.
        self.owners: dict[int, int] = {}
        self.local_aliases: dict[tuple[int, str], set[str]] = {}
        self.parameters: list[ast.Name] = []  # parameters with a default, as names
        self._memo: dict[int, frozenset[str]] | None = None  # once aliases are known
        pairs: list[tuple[ast.Name, ast.expr]] = []
        computed: list[ast.Call] = []  # getattr(x, name) with a computed name
        for tree in trusted + trees:
            _ScopeMap(self.owners).visit_module(tree)
            self._index(tree, pairs, computed)
        for _ in range(_MAX_ALIAS_ROUNDS):  # aliases of aliases, to a fixed point
            grown = False
            for target, value in pairs:
                known = self._binding(target, target.id)
                new = self.resolve(value) - known
                known.update(new)
                grown = grown or bool(new)
                if len(known) > _MAX_PATHS:  # dropping one could drop the forbidden one
                    raise _UncheckableError(
                        _review(f"{target.id} bound to too many modules")
                    )
            if not grown:
                break
        else:
            raise _UncheckableError(_review("aliases of aliases too tangled to follow"))
        self._memo = {}
        self.module_paths = _any_of(self.modules)
        self.alias_targets = {id(t) for t, value in pairs if self.resolve(value)}
        self.statements = [
            _StatementReader(self).read(node) for tree in trees for node in tree.body
        ]
        # The getattr of each getattr(torch, name) where torch is the module itself and
        # getattr the builtin: neither bound by the student to anything else.
        rebound = set().union(*(s.other_binds for s in self.statements))
        lookups = [
            call
            for call in computed
            if self.resolve(call.args[0]) == {"torch"}
            and not {"torch", "getattr"} & rebound
        ]
        self.torch_lookups = {id(call.func) for call in lookups}
        self.torch_lookup_bases = {id(call.args[0]) for call in lookups}

    def _index(
        self,
        tree: ast.Module,
        pairs: list[tuple[ast.Name, ast.expr]],
        computed: list[ast.Call],
    ) -> None:
        in_class = _class_level(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                self.called.add(id(node.func))
                if _constant_attribute(node) is not None:
                    self.literal_lookups.add(id(node.func))
                    self.bases.add(id(node.args[0]))
                elif _is_getattr(node):
                    computed.append(node)
            elif isinstance(node, ast.Attribute):
                self.bases.add(id(node.value))
            elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                self.bound_anywhere.add(node.id)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    path = alias.name if alias.asname else bound
                    self._binding(alias, bound).add(path)
                    self.modules.add(path)
                    self.bound_anywhere.add(bound)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    if alias.name == "*":
                        self.stars.add(node.module)
                        continue
                    bound = alias.asname or alias.name
                    self._binding(alias, bound).add(f"{node.module}.{alias.name}")
                    self.bound_anywhere.add(bound)
            if id(node) in in_class:
                continue  # ``f = F`` in a class body makes an attribute: C.f.unfold is unknown
            for target, value in _alias_pairs(node) + self._defaults(node):
                pairs.append((target, value))
                self.assigned.add(id(value))

    def _defaults(self, node: ast.AST) -> list[tuple[ast.Name, ast.expr]]:
        """(parameter, default) of a function: ``def f(X, K, G=F)`` binds the local G to F."""
        if not isinstance(node, _FUNCTIONS):
            return []
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        with_default = positional[len(positional) - len(args.defaults) :]
        pairs = list(zip(with_default, args.defaults, strict=True))
        pairs += [
            (a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d
        ]
        found = []
        for arg, default in pairs:
            name = ast.Name(
                arg.arg, ast.Store()
            )  # kept alive in parameters: its id() stays
            self.parameters.append(name)
            self.owners[id(name)] = id(node)
            found.append((name, default))
        return found

    def _binding(self, node: ast.AST, name: str) -> set[str]:
        """The paths a name bound (or read) at ``node`` may hold: its own scope's, where the
        name is local to a function or comprehension, else the notebook's global name's."""
        owner = self.owners.get(id(node))
        if owner is None:
            return self.aliases.setdefault(name, set())
        return self.local_aliases.setdefault((owner, name), set())

    def resolve(self, node: ast.AST) -> frozenset[str]:
        """Dotted paths ``node`` may stand for, through imports and aliases (empty: unknown)."""
        if self._memo is None:
            return frozenset(self._resolve(node))
        paths = self._memo.get(id(node))
        if paths is None:
            paths = self._memo[id(node)] = frozenset(self._resolve(node))
        return paths

    def _resolve(self, node: ast.AST) -> set[str]:
        if isinstance(node, ast.Name):
            owner = self.owners.get(id(node))
            if owner is not None:  # a local: only what its own scope binds to it
                return set(self.local_aliases.get((owner, node.id), ()))
            paths = set(self.aliases.get(node.id, ()))
            if node.id not in self.bound_anywhere:
                paths |= {f"{module}.{node.id}" for module in self.stars}
            return paths
        if isinstance(node, ast.Attribute):
            return {f"{p}.{node.attr}" for p in self.resolve(node.value)}
        if isinstance(node, ast.Call):
            name = _constant_attribute(node)
            if name is not None:  # getattr(F, "unfold")
                return {f"{p}.{name}" for p in self.resolve(node.args[0])}
            imported = _constant_import(node, self)
            return {imported} if imported else set()
        if isinstance(node, ast.IfExp):
            return self.resolve(node.body) | self.resolve(node.orelse)
        if isinstance(node, ast.BoolOp):
            return set().union(*(self.resolve(v) for v in node.values))
        if isinstance(node, ast.NamedExpr):
            return self.resolve(node.value)
        return set()

    def live_statements(self, function: str | None) -> list[ast.stmt]:
        """The statements whose code may run when ``function`` is called (all, without one).

        Live: those that bind a name live code reads, those that may change such a name's value
        in place (read other than by calling it: ``helpers.append(F.conv2d)``), and every
        statement that sets an attribute (``torch.Tensor.__matmul__ = ...``: it acts at a
        distance). Modules are changed only by setting attributes, so reading one (``torch.x``)
        does not make a statement live.
        """
        statements = self.statements
        if function is None:
            return [s.node for s in statements]
        plain = set().union(*(s.other_binds for s in statements))
        modules = {name for name, paths in self.aliases.items() if paths} - plain
        reached_by: dict[str, list[int]] = {}  # name -> statements it makes live
        for i, s in enumerate(statements):
            for name in s.binds | (s.uses - modules):
                reached_by.setdefault(name, []).append(i)
        live = [s.patches for s in statements]
        todo = [function] + [
            n
            for s, on in zip(statements, live, strict=True)
            if on
            for n in s.calls | s.uses
        ]
        seen = set(todo)
        while todo:
            for i in reached_by.get(todo.pop(), ()):
                if not live[i]:
                    live[i] = True
                    fresh = (statements[i].calls | statements[i].uses) - seen
                    seen |= fresh
                    todo += fresh
        return [s.node for s, on in zip(statements, live, strict=True) if on]

    def first_forbidden(self, statement: ast.stmt, matcher: _Matcher) -> str | None:
        for node in ast.walk(statement):
            if isinstance(node, ast.Name):
                found = matcher.hit([node.id], self.resolve(node))
            elif isinstance(node, ast.Attribute):
                found = matcher.hit([node.attr], self.resolve(node), node.attr)
            elif isinstance(node, ast.Call):
                name = _constant_attribute(node)
                found = matcher.hit(
                    [name] if name else [], self.resolve(node), name or ""
                )
            else:
                continue
            if found:
                return found
        return None

    def first_passed(self, tree: ast.Module, matcher: _Matcher) -> str | None:
        """A forbidden routine handed to a call as a value (not called): the callee can keep it."""
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                arg = arg.value if isinstance(arg, ast.Starred) else arg
                if isinstance(arg, ast.Name | ast.Attribute | ast.Call):
                    found = self.first_forbidden(arg, matcher)
                    if found and self._as_value(arg, matcher):
                        return found
        return None

    def _as_value(self, arg: ast.expr, matcher: _Matcher) -> bool:
        """Is ``arg`` itself the forbidden routine, rather than what a call of it returned?"""
        if isinstance(arg, ast.Call):
            name = _constant_attribute(
                arg
            )  # getattr(F, "conv2d") is the routine itself
            return bool(name and matcher.hit([name], self.resolve(arg), name))
        name = arg.id if isinstance(arg, ast.Name) else arg.attr
        attribute = "" if isinstance(arg, ast.Name) else arg.attr
        return bool(matcher.hit([name], self.resolve(arg), attribute))

    def first_dynamic(self, tree: ast.Module, lenient: bool = False) -> str | None:
        for node in ast.walk(tree):
            if lenient and id(node) in self.torch_lookups:
                continue  # getattr(torch, name): refused at run time, whatever name is
            for where, label in self._mentions(node):
                if _DYNAMIC_ANY[where].match(label):
                    why = next(
                        why
                        for kind, pattern, why in DYNAMIC
                        if kind == where and re.match(translate(pattern), label)
                    )
                    return f"{label} ({why})"
        return None

    def _mentions(self, node: ast.AST) -> list[tuple[str, str]]:
        if isinstance(node, ast.Name):
            bare = [] if id(node) in self.literal_lookups else [("name", node.id)]
            return bare + [("path", p) for p in sorted(self.resolve(node))]
        if isinstance(node, ast.Attribute):
            return [("attr", node.attr)] + [
                ("path", p) for p in sorted(self.resolve(node))
            ]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return [("attr", node.name)]
        if isinstance(node, ast.Import):
            return [("path", alias.name) for alias in node.names]
        if isinstance(node, ast.ImportFrom) and node.module:
            return [("path", node.module)] + [
                ("path", f"{node.module}.{alias.name}") for alias in node.names
            ]
        return []

    def first_escape(self, statement: ast.stmt, lenient: bool = False) -> str | None:
        """A module used other than by reading an attribute of it or naming it anew (or, with
        ``lenient``, as torch in getattr(torch, name))."""
        for node in ast.walk(statement):
            if (
                isinstance(node, ast.Name | ast.Attribute)
                and isinstance(node.ctx, ast.Load)
                and id(node) not in self.bases
                and id(node) not in self.assigned
                and not (lenient and id(node) in self.torch_lookup_bases)
            ):
                for path in sorted(self.resolve(node)):
                    if self.module_paths.match(path):
                        return path
        return None


def _any_of(patterns: Iterable[str]) -> re.Pattern[str]:
    """One regular expression for fnmatch ``patterns`` (matching nothing for none)."""
    return re.compile(
        "|".join(f"(?:{translate(p)})" for p in sorted(patterns)) or "(?!)"
    )


# The table by kind, for a quick first test of each name in the student's code.
_DYNAMIC_ANY = {
    where: _any_of(pattern for kind, pattern, _ in DYNAMIC if kind == where)
    for where in ("name", "attr", "path")
}


def _class_level(tree: ast.Module) -> set[int]:
    """id() of the nodes that run in a class body itself (not in its methods)."""
    found: set[int] = set()
    stack = [c for n in ast.walk(tree) if isinstance(n, ast.ClassDef) for c in n.body]
    while stack:
        node = stack.pop()
        found.add(id(node))
        if not isinstance(node, (*_FUNCTIONS, ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(node))
    return found


def _alias_pairs(node: ast.AST) -> list[tuple[ast.Name, ast.expr]]:
    """(name, value) for each plain name the statement binds to a whole value: G = F."""
    if isinstance(node, ast.Assign):
        pairs = []
        for target in node.targets:
            pairs += _target_pairs(target, node.value)
        return pairs
    if isinstance(node, ast.AnnAssign) and node.value is not None:
        return _target_pairs(node.target, node.value)
    if isinstance(node, ast.NamedExpr):
        return [(node.target, node.value)]
    return []


def _target_pairs(target: ast.expr, value: ast.expr) -> list[tuple[ast.Name, ast.expr]]:
    if isinstance(target, ast.Name):
        return [(target, value)]
    if (
        isinstance(target, ast.Tuple | ast.List)
        and isinstance(value, ast.Tuple | ast.List)
        and len(target.elts) == len(value.elts)
    ):
        pairs = []
        for t, v in zip(target.elts, value.elts, strict=True):
            pairs += _target_pairs(t, v)
        return pairs
    return []


def _constant_attribute(call: ast.Call) -> str | None:
    """``name`` for getattr/setattr/delattr(obj, "name", ...) with a literal name, else None."""
    if (
        isinstance(call.func, ast.Name)
        and call.func.id in {"getattr", "setattr", "delattr"}
        and len(call.args) >= 2
        and isinstance(call.args[1], ast.Constant)
        and isinstance(call.args[1].value, str)
    ):
        return call.args[1].value
    return None


def _is_getattr(call: ast.Call) -> bool:
    return (
        isinstance(call.func, ast.Name)
        and call.func.id == "getattr"
        and 2 <= len(call.args) <= 3
        and not call.keywords
    )


def _constant_import(call: ast.Call, program: _Program) -> str | None:
    """The module of ``importlib.import_module("m")`` or ``__import__("m")`` with a literal name."""
    if not (
        call.args
        and isinstance(call.args[0], ast.Constant)
        and isinstance(call.args[0].value, str)
    ):
        return None
    func = call.func
    if (isinstance(func, ast.Name) and func.id == "__import__") or (
        "importlib.import_module" in program.resolve(func)
    ):
        return call.args[0].value
    return None


class _StatementReader:
    """Which global names one top-level statement binds, calls and reads (Python's scoping)."""

    def __init__(self, program: _Program) -> None:
        self.program = program

    def read(self, node: ast.stmt) -> _Statement:
        self.statement = _Statement(node)
        self._visit(node, _Scope("module", None))
        return self.statement

    def _bind(self, name: str, scope: _Scope, plain: bool = True) -> None:
        if scope.binds_global(name):
            self.statement.binds.add(name)
            if plain:
                self.statement.other_binds.add(name)

    def _visit(self, node: ast.AST, scope: _Scope) -> None:
        s = self.statement
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                if scope.reads_global(node.id):
                    (s.calls if id(node) in self.program.called else s.uses).add(
                        node.id
                    )
            elif scope.kind != "comprehension" or node.id not in scope.names:
                self._bind(node.id, scope, id(node) not in self.program.alias_targets)
            return
        if isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load):
            s.patches = True
        if (  # a library's table changed in place: sys.modules["m"] = ...
            isinstance(node, ast.Subscript)
            and not isinstance(node.ctx, ast.Load)
            and self.program.resolve(node.value)
        ):
            s.patches = True
        if isinstance(node, ast.Call) and _constant_attribute(node) is not None:
            if node.func.id in {"setattr", "delattr"}:  # type: ignore[union-attr]
                s.patches = True
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name != "*":
                    bound = alias.asname or alias.name.split(".")[0]
                    self._bind(bound, scope, plain=False)
            return
        if isinstance(node, ast.Global | ast.Nonlocal):
            return
        if isinstance(node, ast.ExceptHandler) and node.name:
            self._bind(node.name, scope)
        if isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            self._bind(node.name, scope)
        if isinstance(node, ast.MatchMapping) and node.rest:
            self._bind(node.rest, scope)
        if isinstance(node, _FUNCTIONS):
            self._function(node, scope)
        elif isinstance(node, ast.ClassDef):
            for child in [*node.decorator_list, *node.bases, *node.keywords]:
                self._visit(child, scope)
            self._bind(node.name, scope)
            inner = _Scope("class", scope, names=_own_bindings(node.body)[0])
            for child in node.body:
                self._visit(child, inner)
        elif isinstance(node, _COMPREHENSIONS):
            first, *rest = node.generators
            self._visit(first.iter, scope)
            targets = {
                n.id
                for g in node.generators
                for n in ast.walk(g.target)
                if isinstance(n, ast.Name)
            }
            inner = _Scope("comprehension", scope, names=targets)
            for child in [first.target, *first.ifs, *rest]:
                self._visit(child, inner)
            elements = (
                [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            )
            for child in elements:
                self._visit(child, inner)
        else:
            for child in ast.iter_child_nodes(node):
                self._visit(child, scope)

    def _function(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, scope: _Scope
    ) -> None:
        args = node.args
        outer = [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
        if not isinstance(node, ast.Lambda):
            outer += node.decorator_list
            outer += [a.annotation for a in _arguments(args) if a.annotation]
            outer += [node.returns] if node.returns else []
            self._bind(node.name, scope)
        for child in outer:
            self._visit(child, scope)
        body = [node.body] if isinstance(node, ast.Lambda) else node.body
        names, declared = _own_bindings(body)
        inner = _Scope(
            "function",
            scope,
            names=(names | {a.arg for a in _arguments(args)}) - declared,
            declared_global=declared,
        )
        for child in body:
            self._visit(child, inner)


def _arguments(args: ast.arguments) -> list[ast.arg]:
    extra = [a for a in (args.vararg, args.kwarg) if a is not None]
    return [*args.posonlyargs, *args.args, *args.kwonlyargs, *extra]


def _own_bindings(body: Sequence[ast.AST]) -> tuple[set[str], set[str]]:
    """Names bound in a function's (or class's) own scope, and those it declares global."""
    names, declared, nonlocal_ = _scope_names(body)
    return (
        names | nonlocal_,
        declared,
    )  # a nonlocal is the enclosing function's: not global


def _scope_names(body: Sequence[ast.AST]) -> tuple[set[str], set[str], set[str]]:
    """Names a function's (or class's) own scope binds, declares global, declares nonlocal."""
    names: set[str] = set()
    declared: set[str] = set()
    nonlocal_: set[str] = set()
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Global):
            declared.update(node.names)
        elif isinstance(node, ast.Nonlocal):
            nonlocal_.update(node.names)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.alias) and node.name != "*":
            names.add(node.asname or node.name.split(".")[0])
        elif (
            isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar)
            and node.name
        ):
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            stack.extend(getattr(node, "decorator_list", []))
            continue  # its body is its own scope
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, _COMPREHENSIONS):  # only := escapes a comprehension
            stack.extend(
                n.target for n in ast.walk(node) if isinstance(n, ast.NamedExpr)
            )
            continue
        stack.extend(ast.iter_child_nodes(node))
    return names - declared - nonlocal_, declared, nonlocal_


class _ScopeMap:
    """Which function or comprehension owns each name node, by Python's scoping rules.

    Fills ``owners`` (id() of a Name or import alias node -> id() of the function, lambda or
    comprehension where that name is local); a name of the module is left out. A class body is
    read as part of the scope around it: its names become attributes, which the reading does
    not follow (``class C: f = F`` leaves ``F`` passed around, and sent to review).
    """

    def __init__(self, owners: dict[int, int]) -> None:
        self.owners = owners

    def visit_module(self, tree: ast.Module) -> None:
        for node in tree.body:
            self._visit(node, ())

    @staticmethod
    def _owner(name: str, chain: tuple[tuple[int, set[str], set[str], set[str]], ...]):
        for owner, local, declared, nonlocal_ in reversed(chain):
            if name in declared:
                return None
            if name in local and name not in nonlocal_:
                return owner
        return None

    def _mark(self, node: ast.AST, name: str, chain) -> None:
        owner = self._owner(name, chain)
        if owner is not None:
            self.owners[id(node)] = owner

    def _visit(self, node: ast.AST, chain) -> None:
        if isinstance(node, ast.Name):
            self._mark(node, node.id, chain)
            return
        if isinstance(node, ast.alias):
            self._mark(node, node.asname or node.name.split(".")[0], chain)
            return
        if isinstance(node, _FUNCTIONS):
            args = node.args
            outer = [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
            if not isinstance(node, ast.Lambda):
                outer += node.decorator_list
                outer += [a.annotation for a in _arguments(args) if a.annotation]
                outer += [node.returns] if node.returns else []
            for child in outer:
                self._visit(child, chain)
            body = [node.body] if isinstance(node, ast.Lambda) else node.body
            names, declared, nonlocal_ = _scope_names(body)
            names |= {a.arg for a in _arguments(args)}
            inner = (*chain, (id(node), names - declared, declared, nonlocal_))
            for child in body:
                self._visit(child, inner)
            return
        if isinstance(node, _COMPREHENSIONS):
            first, *rest = node.generators
            self._visit(first.iter, chain)
            targets = {
                n.id
                for g in node.generators
                for n in ast.walk(g.target)
                if isinstance(n, ast.Name)
            }
            inner = (*chain, (id(node), targets, set(), set()))
            elements = (
                [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            )
            for child in [first.target, *first.ifs, *rest, *elements]:
                self._visit(child, inner)
            return
        for child in ast.iter_child_nodes(node):
            self._visit(child, chain)
