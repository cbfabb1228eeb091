"""The only code that runs next to student code: zygote, student process, child per notebook.

Bound into the sandbox with ``syscall_policy.py`` alone (never the rest of the package: no
reference solution and no hidden test logic is visible there) and run as a script.

* The **zygote** imports torch and d2l once, makes itself non-dumpable and never runs student
  code. On its control socket it receives one message per student with a socket of that
  student's own, forks the student's process, and kills it when the grader says so.
* The **student process** leaves the zygote behind: every inherited descriptor but its socket
  closed, a user, IPC, mount and PID namespace of its own (so its keyring, System V objects and
  /tmp start empty and vanish with it, and it cannot see a pid it could signal), no capabilities.
  It reads a batch of jobs per line on its socket (all of the student's notebooks; one notebook
  under stock nbgrader), forks a child for them and writes their replies on one line.
* The **child** closes everything but its two pipes, applies resource limits and the seccomp
  filter, and only then runs each job: the release's setup, the student's cells, the function
  on the job's inputs, in a namespace of its own, one job after another as one kernel runs a
  notebook (the policy reads the notebook's cells as one program, too); the jobs share the
  process, whose state only this student's code can change. Before the first student line it
  switches off, in PyTorch's dispatcher, the operators the jobs' exercises forbid (``_refuse``),
  and makes ``__main__`` each job's own namespace. It reports what came back as plain data
  (an exception as its class and line, never its message) and decides nothing: the grader
  outside checks every field of every reply.
  A job that runs out of time or kills the child costs that job; a fresh child takes the rest.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import re
import resource
import select
import signal
import socket
import sys
import time
import types
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fingerprint
import syscall_policy

# Importing torch and d2l makes some 440,000 objects, and the collector would walk the growing
# heap eight times meanwhile to free next to nothing (1 s of a zygote's 4 to 5 s start here).
# _cheap_forks() collects once, freezes what the imports made and turns it back on before the
# zygote forks anyone. (Only the zygote: a test that loads this file as a module keeps it on.)
if __name__ == "__main__":
    gc.disable()
import torch

# Before any parallel op: no thread pool that a forked child would inherit.
torch.set_num_threads(1)
import torch.nn.functional as F  # noqa: E402
from d2l import torch as d2l  # noqa: E402  (imported once here, so each child starts warm)
from torch import nn  # noqa: E402

SETUP_FAILED = 71  # exit code: a process could not confine itself, so it ran nothing
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4
CLONE_NEWNS, CLONE_NEWIPC = 0x00020000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID = 0x10000000, 0x20000000
MS_NOSUID, MS_NODEV = 0x2, 0x4
MADV_COLLAPSE, HUGE_PAGE = 25, 2 << 20
# Built once in the zygote, before any fork; each child adds its pid and loads it.
_FILTER: syscall_policy.Filter | None = None


class RefusedOperatorError(RuntimeError):
    """Raised by an operator that the exercise being graded forbids (see ``_refuse``)."""


# The grader quotes this class by this name (``replies.REFUSED``); it is no module's to import.
RefusedOperatorError.__module__ = "grader"

# Families of PyTorch operators a job may have switched off, by the operator's name in the
# dispatcher: every convolution (conv2d, convolution, mkldnn_convolution, _slow_conv2d_forward,
# thnn_conv2d, conv_transpose*, quantized::conv*, ...) and the library's im2col (F.unfold,
# nn.Unfold). A tensor's own .unfold (windows, not im2col) is another operator and stays.
OPERATOR_FAMILIES = {
    "convolution": re.compile(r"conv(?!ert)"),
    "im2col": re.compile(r"im2col"),
}
# The kernels that compute on the CPU: a backend's own, or one shared by all backends. An
# operator with neither only decomposes into others (conv2d into convolution), refused there.
COMPUTING_KEYS = (
    "CPU",
    "QuantizedCPU",
    "MkldnnCPU",
    "CompositeExplicitAutograd",
    "CompositeExplicitAutogradNonFunctional",
)
# Read once in the zygote: (namespace, operator with overload, key) of every family.
_OPERATORS = {
    family: [
        (*name.split("::", 1), key)
        for name in torch._C._dispatch_get_all_op_names()
        if pattern.search(name.split("::", 1)[1])
        for key in COMPUTING_KEYS
        if torch._C._dispatch_has_kernel_for_dispatch_key(name, key)
    ]
    for family, pattern in OPERATOR_FAMILIES.items()
}


def _refused(*args, **kwargs):
    raise RefusedOperatorError(
        "this operator is switched off while this exercise is graded"
    )


def _refuse(families: list[str]) -> None:
    """Switch off every operator of ``families`` in this process, for good.

    At the dispatcher, not in Python's names: every path to the operator (F.conv2d under any
    alias, nn.Conv2d in a d2l model, torch.ops.aten, a handle stored before the student's code
    ran, the harness's own globals) ends in the same kernel table, whose computing entries now
    raise. The registration's handle is leaked on purpose: it is not tracked by the garbage
    collector and nothing refers to it, so student code can neither find it nor undo it
    (``reset``). Called again before each job, so that a kernel an earlier job registered over
    these (it could compute nothing either) does not last into the next.
    """
    handles = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "overriding a previously registered kernel"
        for family in families:
            for namespace, name, key in _OPERATORS[family]:
                if namespace not in handles:
                    handles[namespace] = torch._C._dispatch_library(
                        "IMPL", namespace, "", "<grader>", 0
                    )
                handles[namespace].impl(name, key, _refused)
    for handle in handles.values():
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(handle))


def _window_sums(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Cross-correlation of each channel of X with the same channel of K, summed over channels:
    one product per kernel position, with no convolution operator (those may be switched off)."""
    h, w = K.shape[-2:]
    rows, cols = X.shape[-2] - h + 1, X.shape[-1] - w + 1
    if X.dim() != 3 or K.dim() != 3 or X.shape[0] != K.shape[0] or rows < 1 or cols < 1:
        raise RuntimeError(
            f"cannot cross-correlate input {tuple(X.shape)} with kernel {tuple(K.shape)}"
        )
    Y = X.new_zeros((rows, cols), dtype=torch.promote_types(X.dtype, K.dtype))
    for i in range(h):
        for j in range(w):
            Y += (X[:, i : i + rows, j : j + cols] * K[:, i, j, None, None]).sum(0)
    return Y


def _stand_in_corr2d_multi_in(X, K):
    """The notebook's own stand-in (7.4.2), computed without any convolution operator."""
    return _window_sums(X, K)


def _stand_in_corr2d_multi_in_out(X, K):
    return torch.stack([_window_sums(X, k) for k in K])


STAND_INS = {
    "corr2d_multi_in": _stand_in_corr2d_multi_in,
    "corr2d_multi_in_out": _stand_in_corr2d_multi_in_out,
}
# Named as the student knows them: a wrong call then reads "corr2d_multi_in() takes 2
# positional arguments", never a private name the student did not write.
for _name, _fn in STAND_INS.items():
    _fn.__name__ = _fn.__qualname__ = _name


def _check(result: int, what: str) -> None:
    if result != 0:
        raise OSError(ctypes.get_errno(), f"{what}: {os.strerror(ctypes.get_errno())}")


def _prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, value, 0, 0, 0), f"prctl({option})")


def _close_all_but(*keep: int) -> None:
    """Close every inherited descriptor except ``keep``; 0, 1 and 2 become /dev/null."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd not in keep:
            os.dup2(null, fd)
    low = 3
    for fd in sorted({*keep, null}):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, 1 << 16)
    if null not in keep and null > 2:
        os.close(null)


def _describe(value) -> dict:
    """Plain data about a returned value; numbers only for real tensors of a sane size."""
    kind = type(value)
    info = {"type": f"{kind.__module__}.{kind.__qualname__}"}
    if isinstance(value, torch.Tensor):
        # A plain tensor: no __torch_function__ tricks.
        plain = torch.Tensor.as_subclass(value, torch.Tensor)
        info.update(
            shape=list(plain.shape), dtype=str(plain.dtype), device=str(plain.device)
        )
        if plain.numel() <= 100_000 and not plain.is_complex():
            info["values"] = (
                plain.detach().to("cpu", torch.float64).reshape(-1).tolist()
            )
    elif isinstance(value, int | float) and not isinstance(value, bool):
        info.update(shape=[], values=[value])  # a counting exercise's answer
    elif kind.__module__ == "numpy":
        info["shape"] = list(getattr(value, "shape", ()))
        # An array: its numbers, as a tensor's (judging._array_values).
        if info["shape"]:
            try:
                if 0 < value.size <= 100_000:
                    info["values"] = [float(v) for v in value.flat]
            except BaseException:
                pass
        # A NumPy scalar (np.int64(84)): its number, for the message.
        if info["shape"] == []:
            try:
                number = value.item()
            except BaseException:
                number = None
            if (
                isinstance(number, int | float)
                and not isinstance(number, bool)
                and -(10**18) < number < 10**18  # finite, and within what replies take
            ):
                info["values"] = [number]
    return info


def _call(fn, *args, **kwargs) -> dict:
    try:
        return _describe(fn(*args, **kwargs))
    except BaseException as error:  # SystemExit and friends are answers too
        return _raised(error)


def _raised(error: BaseException) -> dict:
    """An exception as the grader may quote it: its class and where in the cells it arose.

    Never its message, nor anything else student code made: while the function ran, its
    inputs (hidden ones too) were in this process, and a message could carry them out. The
    grader quotes the class only if it is Python's own, and the line from its own copy.
    """
    try:
        return _where(error)
    except BaseException:  # a class built to break this: its name alone is not worth it
        return {"error": "?"}


def _where(error: BaseException) -> dict:
    kind = type(error)
    module = kind.__module__
    reply: dict = {
        "error": f"{module if isinstance(module, str) else '?'}.{kind.__qualname__}"[
            :200
        ]
    }
    where = []
    if isinstance(error, SyntaxError) and isinstance(error.filename, str):
        where.append((error.filename, error.lineno))
    traceback = error.__traceback__
    while traceback is not None:  # the innermost frame that runs a cell's code wins
        where.append((traceback.tb_frame.f_code.co_filename, traceback.tb_lineno))
        traceback = traceback.tb_next
    for filename, line in where:
        cell = CELL_NAME.fullmatch(filename)
        if cell and isinstance(line, int):
            reply.update(cell=int(cell[1]), line=line)
    return reply


CELL_NAME = re.compile(r"<cell (\d{1,4})>")


def _tensor(data: dict, dtype: torch.dtype) -> torch.Tensor:
    """A tensor from the job's plain data: its shape and its values, flat, exact in float64."""
    return (
        torch.tensor(data["values"], dtype=torch.float64)
        .reshape(data["shape"])
        .to(dtype)
    )


def _run_cases(job: dict, namespace: dict) -> list[dict]:
    fn = namespace.get(job["function"])
    if not callable(fn):
        # The trusted side reads this exact text as "missing-function" (replies.not_defined).
        return [{"error": f"NameError: {job['function']} is not defined"}] * len(
            job["cases"]
        )
    results = []
    for case in job["cases"]:
        if "params" in case:  # a counting exercise: keyword arguments, a number back
            results.append(_call(fn, **case["params"]))
            continue
        # The job carries the case's two tensors and nothing else (no seed, no name, no
        # answer): whatever student code reads here, it learns only its own inputs.
        dtype = getattr(torch, case["dtype"])
        X, K = (_tensor(case[name], dtype) for name in ("X", "K"))
        info = _call(fn, X, K)
        # A fact the grader checks, not a verdict.
        info["inputs_after"] = fingerprint.digest(X, K)
        results.append(info)
    return results


def _limit(memory_bytes: int, cpu_seconds: int) -> None:
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = mapped + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    # No file writes (pipes are not files), no processes or threads, no core files, no POSIX
    # message queues (the syscall filter refuses them too).
    for kind in ("FSIZE", "NPROC", "CORE", "MSGQUEUE"):
        resource.setrlimit(getattr(resource, f"RLIMIT_{kind}"), (0, 0))


def _child(jobs: list[dict], limits: dict, result_fd: int, output_fd: int) -> None:
    """Confine this process, then run each job's cells and cases in a namespace of its own,
    one line of reply per job on the result pipe (never returns)."""
    try:
        _close_all_but(result_fd, output_fd)
        # Nothing of the harness by module name: __main__ becomes each job's own namespace.
        for name in ("fingerprint", "syscall_policy"):
            sys.modules.pop(name, None)
        if sys.path[:1] == [os.path.dirname(os.path.abspath(__file__))]:
            del sys.path[0]
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = sys.stdout
        # The CPU limit backs up the job's own clock, which the student process keeps.
        _limit(limits["memory_bytes"], limits["cpu_seconds"] * len(jobs))
        if _FILTER is None:
            raise OSError("no seccomp filter")
        _FILTER.install(os.getpid())
    except OSError:
        os._exit(SETUP_FAILED)  # never run student code unconfined
    for job in jobs:
        # Before any of the job's lines: what it forbids (run_jobs groups the jobs so that
        # this only grows within a child).
        _refuse(job.get("refuse", []))
        line = json.dumps(_run_job_here(job)).encode() + b"\n"
        while line:
            line = line[os.write(result_fd, line) :]
    os._exit(0)


def _run_job_here(job: dict) -> dict:
    """The release's setup, the student's cells and the cases, in a fresh ``__main__`` (as a
    notebook's kernel has it), so that ``import __main__`` finds the student's names, not the
    harness's. Cell ``i`` of setup + cells is compiled as ``<cell i>``: ``_raised`` names it."""
    main = types.ModuleType("__main__")
    namespace = main.__dict__
    namespace.update(torch=torch, F=F, nn=nn, d2l=d2l, device=torch.device("cpu"))
    sys.modules["__main__"] = main
    cell_errors = []
    for number, source in enumerate(job["setup"] + job["cells"]):
        try:
            exec(compile(source, f"<cell {number}>", "exec"), namespace)
        except BaseException as error:
            cell_errors.append(_raised(error))
    for name, stand_in in STAND_INS.items():
        if name != job["function"] and name in job.get("stand_ins", ()):
            namespace[name] = stand_in
    return {"cell_errors": cell_errors, "cases": _run_cases(job, namespace)}


# How often the student process looks at a running child's own clock.
TICK_SECONDS = 0.1


class _OwnClock:
    """Seconds a process has had to itself: wall time less the time it waited for a CPU.

    A job's time limit runs on this clock, so that a busy machine (other students, other
    courses, a test suite) never turns an honest answer into a timeout: the scheduler's
    run-queue delay (``/proc/<pid>/schedstat``, second field, nanoseconds) is time the job could
    not use. Computing, sleeping and waiting on a pipe all count; a reaped child keeps its last
    reading. Where the child's entry cannot be found, this is the wall clock.
    """

    def __init__(self, pid: int) -> None:
        self._path = _proc_entry(pid) + "/schedstat"
        self._waited = 0.0

    def now(self) -> float:
        try:
            with open(self._path, "rb") as f:
                waited = int(f.read().split()[1]) / 1e9
            self._waited = max(self._waited, waited)
        except (OSError, ValueError, IndexError):
            pass
        return time.monotonic() - self._waited


def _proc_entry(pid: int) -> str:
    """The /proc folder of this process's child ``pid``. The student process is PID 1 of its
    own namespace while /proc is the sandbox's, whose numbers differ: the child is the entry
    whose parent is this process in /proc's numbering and whose innermost pid is ``pid``."""
    me = os.readlink("/proc/self")
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/status", "rb") as f:
                fields = dict(line.split(b":", 1) for line in f if b":" in line)
        except OSError:
            continue
        nspid = fields.get(b"NSpid", b"").split()
        if fields.get(b"PPid", b"").strip() == me.encode() and nspid[-1:] == [
            str(pid).encode()
        ]:
            return f"/proc/{entry}"
    return "/proc/nonexistent"


def _reap(pid: int, clock: _OwnClock, deadline: float) -> tuple[bool, int]:
    """Wait for the child until its own clock reaches the deadline, then kill it: a child
    that closed its pipes and sleeps is not waited for beyond its limit. Returns (in time,
    wait status)."""
    pidfd = os.pidfd_open(pid)
    in_time = False
    try:
        while not in_time and (left := deadline - clock.now()) > 0:
            in_time = bool(select.select([pidfd], [], [], min(left, TICK_SECONDS))[0])
    finally:
        os.close(pidfd)
    if not in_time:
        os.kill(pid, signal.SIGKILL)
    return in_time, os.waitpid(pid, 0)[1]


def run_jobs(jobs: list[dict], limits: dict) -> list[dict]:
    """One reply per job, whatever the jobs do: in one child (a student's answers, as one
    kernel would run them), and in a fresh child after each job that times out or dies, and
    before a job that needs an operator an earlier job switched off."""
    replies: list[dict] = []
    while len(replies) < len(jobs):
        # A child's operators stay switched off, so a job that needs one of them back
        # (compose_kernels, after the matmul exercise) starts a child of its own; and code
        # that ran with nothing switched off never shares a child with a job that refuses.
        group = len(replies)
        refused = set(jobs[group].get("refuse", []))
        while group < len(jobs):
            wanted = set(jobs[group].get("refuse", []))
            if not (refused <= wanted and bool(refused) == bool(wanted)):
                break
            refused, group = wanted, group + 1
        replies += _run_in_a_child(jobs[len(replies) : group], limits)
    return replies


def _run_in_a_child(jobs: list[dict], limits: dict) -> list[dict]:
    """Fork a child for ``jobs``; the replies of the jobs it finished, and of the one it was
    running when it died or ran out of time (at least one reply).

    Each job has ``wall_seconds`` of the child's own time (``_OwnClock``) from the moment the
    previous reply came; everything the child writes is read, only ``result_bytes`` of each
    reply and ``output_bytes`` of its prints are kept.
    """
    result_r, result_w = os.pipe()
    output_r, output_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            _child(jobs, limits, result_w, output_w)
        finally:
            os._exit(70)
    clock = _OwnClock(pid)
    job_start = clock.now()
    os.close(result_w)
    os.close(output_w)
    replies: list[dict] = []
    line, output = bytearray(), bytearray()
    open_fds = {result_r, output_r}
    os.set_blocking(output_r, False)

    def read_output() -> None:
        """What the child printed so far (before the reply it wrote: that job's prints)."""
        nonlocal output
        while output_r in open_fds:
            try:
                chunk = os.read(output_r, 65536)
            except BlockingIOError:
                return
            if not chunk:
                open_fds.discard(output_r)
            output += chunk[: max(0, limits["output_bytes"] - len(output))]

    drained = True
    while open_fds and len(replies) < len(jobs):
        remaining = job_start + limits["wall_seconds"] - clock.now()
        if remaining <= 0:
            drained = False
            break
        ready = select.select(list(open_fds), [], [], min(remaining, TICK_SECONDS))[0]
        for fd in ready:
            if fd == output_r:
                read_output()
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.discard(fd)
            else:
                read_output()
                while len(replies) < len(jobs):
                    head, newline, chunk = chunk.partition(b"\n")
                    line += head[: max(0, limits["result_bytes"] - len(line))]
                    if not newline:
                        break
                    now = clock.now()
                    replies.append(_reply("ok", line, output, now - job_start))
                    line, output, job_start = bytearray(), bytearray(), now
    for fd in (result_r, output_r):
        os.close(fd)
    deadline = job_start + limits["wall_seconds"] if drained else 0.0
    in_time, status = _reap(pid, clock, deadline)
    if len(replies) == len(jobs):
        return replies  # all answered; how the child then ended changes none of them
    seconds = clock.now() - job_start
    if not (drained and in_time):
        why = "timeout"
    elif os.WIFSIGNALED(status):
        why = f"killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
    elif os.WEXITSTATUS(status) != 0:
        why = f"exited with code {os.WEXITSTATUS(status)}"
    else:
        # Ended without its reply: whatever it wrote fails the grader's check.
        why = "ok"
    return [*replies, _reply(why, line, output, seconds)]


def _reply(status: str, child: bytes, output: bytes, seconds: float) -> dict:
    return {
        "status": status,
        "child": child.decode("utf-8", "replace"),
        "output": output.decode("utf-8", "replace"),
        "seconds": round(seconds, 3),
    }


def _own_namespaces() -> None:
    """Unshare user, IPC, mount and PID namespaces, and give this student a /tmp of its own."""
    uid, gid = os.getuid(), os.getgid()
    _check(
        _libc.unshare(CLONE_NEWUSER | CLONE_NEWIPC | CLONE_NEWNS | CLONE_NEWPID),
        "unshare",
    )
    # A non-dumpable process's /proc files belong to root: dumpable only while it writes its
    # maps, before any student code exists.
    _prctl(PR_SET_DUMPABLE, 1)
    for path, text in (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"),
                       ("gid_map", f"{gid} {gid} 1")):  # fmt: skip
        with open(f"/proc/self/{path}", "w") as f:
            f.write(text)
    _prctl(PR_SET_DUMPABLE, 0)
    _check(
        _libc.mount(
            b"tmpfs", b"/tmp", b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=1777,size=1m"
        ),
        "mount /tmp",
    )


def _drop_capabilities() -> None:
    """The new user namespace gave this process every capability in it; keep none."""

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]  # fmt: skip

    _check(_libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()), "capset")


def _serve(sock: socket.socket) -> None:
    """The student process (pid 1 of its namespace): one batch of jobs per line in (the
    student's answers), one line with their replies out."""
    with sock.makefile("rb") as batches:
        for line in batches:
            batch = json.loads(line)
            replies = run_jobs(batch["jobs"], batch["limits"])
            sock.sendall(json.dumps({"replies": replies}).encode() + b"\n")


def _student(fd: int, zygote: int) -> None:
    """Forked from the zygote for one student; confines itself before it reads any job."""
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != zygote:
            os._exit(SETUP_FAILED)
        _close_all_but(fd)
        _own_namespaces()
    except OSError:
        os._exit(SETUP_FAILED)
    pid = os.fork()  # the first process of the new PID namespace: its init
    if pid == 0:
        try:
            # This student's processes end when their parent does: PID 1 takes the rest along.
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            _drop_capabilities()
            _prctl(PR_SET_DUMPABLE, 0)
            _serve(socket.socket(fileno=fd))
        finally:
            os._exit(0)
    os.close(fd)
    try:
        _drop_capabilities()  # this process only waits from now on
    finally:
        os._exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) & 0xFF)


def _cheap_forks() -> None:
    """Make the forks to come cheaper: every student process and every child is one.

    Importing torch leaves about 450 MB of anonymous memory, and fork copies one page-table
    entry per 4 KiB page of it (about 40 ms for a fork and exit here). Collapsed into 2 MiB
    pages (``MADV_COLLAPSE``, Linux 6.1+), fork copies one entry per 2 MiB (about 12 ms); a
    kernel without it leaves the memory as it was. ``gc.freeze`` keeps the collector from
    writing to every inherited object, and so from copying its page, in each child.
    """
    gc.collect()
    gc.freeze()
    gc.enable()  # off since the imports (above): every student's garbage is collected
    madvise = _libc.madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if fields[1] != "rw-p" or fields[5:] not in ([], ["[heap]"]):
                continue  # only private writable memory that belongs to no file
            low, high = (int(x, 16) for x in fields[0].split("-"))
            low = -(-low // HUGE_PAGE) * HUGE_PAGE
            high = high // HUGE_PAGE * HUGE_PAGE
            if high > low:  # best effort: errors are ignored
                madvise(low, high - low, MADV_COLLAPSE)


def main() -> None:
    """The zygote: fork a process per student on request, kill it on request, nothing else."""
    global _FILTER
    # No ptrace, no /proc/<pid>/mem or fd, for anyone of its uid.
    _prctl(PR_SET_DUMPABLE, 0)
    try:
        _FILTER = syscall_policy.Filter()
    except OSError:
        pass  # no child can confine itself: the grader's start-up probe refuses the sandbox
    _cheap_forks()
    control = socket.socket(fileno=int(sys.argv[1]))
    students: dict[int, int] = {}  # the grader's session number -> pid
    control.send(json.dumps({"ready": True, "torch": torch.__version__}).encode())
    while True:
        message, fds, _, _ = socket.recv_fds(control, 4096, 1)
        if not message:
            return  # the grader has gone
        request = json.loads(message)
        for session, pid in list(students.items()):
            if os.waitpid(pid, os.WNOHANG)[0]:
                del students[session]
        if request["op"] == "student" and fds:
            zygote = os.getpid()
            pid = os.fork()
            if pid == 0:
                control.close()
                _student(fds[0], zygote)
            os.close(fds[0])
            students[request["session"]] = pid
        elif request["op"] == "kill" and request["session"] in students:
            pid = students.pop(request["session"])
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        for extra in fds[1:]:
            os.close(extra)


if __name__ == "__main__":
    main()
