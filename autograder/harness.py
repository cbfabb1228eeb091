"""The only code that runs next to student code: inside the sandbox, one forked child per job.

This file is bound alone into the sandbox (never the rest of the package: no reference solution
and no hidden test logic is visible there) and run as a script. It imports torch and d2l once,
then reads one JSON job per line on stdin, forks a child per job, and writes one JSON reply per
line on stdout. The child applies resource limits, runs the student's cells, calls the function
on the job's inputs and reports what came back as plain data: shapes, dtypes and numbers. It
decides nothing: its reply is untrusted, and the grader outside checks every field.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import select
import signal
import sys
import time

import torch

torch.set_num_threads(
    1
)  # before any parallel op: no thread pool that a forked child inherits
import torch.nn.functional as F  # noqa: E402
from d2l import torch as d2l  # noqa: E402  (imported once here, so each child starts warm)
from torch import nn  # noqa: E402

_conv_originals = {"F.conv2d": F.conv2d, "torch.conv2d": torch.conv2d}
SETUP_FAILED = 71  # exit code: the child could not confine itself
CONV_NAMES = ("conv1d", "conv2d", "conv3d", "conv_transpose2d")


def _stand_in_corr2d_multi_in(X, K):
    """The notebook's own stand-in (7.4.2): PyTorch's conv2d, called through a private handle."""
    return _conv_originals["F.conv2d"](X[None], K[None])[0, 0]


def _stand_in_corr2d_multi_in_out(X, K):
    return _conv_originals["F.conv2d"](X[None], K)[0]


STAND_INS = {
    "corr2d_multi_in": _stand_in_corr2d_multi_in,
    "corr2d_multi_in_out": _stand_in_corr2d_multi_in_out,
}


def _count_builtin_convolutions(counter: list[int]) -> None:
    """Wrap torch's convolutions so that the child can report whether the student called them."""

    def wrap(module, name):
        original = getattr(module, name)

        def counted(*args, **kwargs):
            counter[0] += 1
            return original(*args, **kwargs)

        setattr(module, name, counted)

    for name in CONV_NAMES:
        for module in (F, torch):
            if hasattr(module, name):
                wrap(module, name)


def _forbid_new_processes() -> None:
    """Make fork, clone (so threads too) and exec fail with EPERM, whoever we run as.

    RLIMIT_NPROC does the same for ordinary users, but the kernel exempts uid 0, which is what a
    sandbox started by root is outside its user namespace; seccomp has no such exemption.
    """
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
    ]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    allow, deny = (
        0x7FFF0000,
        0x00050000 | errno.EPERM,
    )  # SCMP_ACT_ALLOW, SCMP_ACT_ERRNO(EPERM)
    ctx = lib.seccomp_init(allow)
    for name in (b"fork", b"vfork", b"clone", b"clone3", b"execve", b"execveat"):
        number = lib.seccomp_syscall_resolve_name(name)
        if number >= 0 and lib.seccomp_rule_add(ctx, deny, number, 0) != 0:
            raise OSError(f"seccomp: cannot deny {name.decode()}")
    if lib.seccomp_load(ctx) != 0:
        raise OSError("seccomp: cannot load the filter")


def _limit(memory_bytes: int, cpu_seconds: int) -> None:
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(
        resource.RLIMIT_AS, (mapped + memory_bytes, mapped + memory_bytes)
    )
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    resource.setrlimit(
        resource.RLIMIT_FSIZE, (0, 0)
    )  # no file writes (pipes are not files)
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))  # no processes, no threads
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _describe(value) -> dict:
    """Plain data about a returned value; numbers only for real tensors of a sane size."""
    kind = type(value)
    info = {"type": f"{kind.__module__}.{kind.__qualname__}"}
    if isinstance(value, torch.Tensor):
        plain = torch.Tensor.as_subclass(
            value, torch.Tensor
        )  # no __torch_function__ tricks
        info.update(
            shape=list(plain.shape), dtype=str(plain.dtype), device=str(plain.device)
        )
        if plain.numel() <= 100_000 and (
            plain.is_floating_point() or not plain.is_complex()
        ):
            info["values"] = (
                plain.detach().to("cpu", torch.float64).reshape(-1).tolist()
            )
    elif isinstance(value, int | float) and not isinstance(value, bool):
        info.update(shape=[], values=[value])  # a counting exercise's answer
    elif kind.__module__ == "numpy":
        info["shape"] = list(getattr(value, "shape", ()))
    return info


def _call(fn, *args, **kwargs) -> dict:
    try:
        return _describe(fn(*args, **kwargs))
    except BaseException as error:  # SystemExit and friends are answers too
        return {"error": f"{type(error).__name__}: {str(error)[:300]}"}


def _run_cases(job: dict, namespace: dict, conv_calls: list[int]) -> list[dict]:
    fn = namespace.get(job["function"])
    if not callable(fn):
        return [{"error": f"NameError: {job['function']} is not defined"}] * len(
            job["cases"]
        )
    results = []
    for case in job["cases"]:
        conv_calls[0] = 0
        if "params" in case:  # a counting exercise: keyword arguments, a number back
            info = _call(fn, **case["params"])
            info.update(inputs_unchanged=True, conv_calls=conv_calls[0])
            results.append(info)
            continue
        gen = torch.Generator().manual_seed(case["seed"])
        dtype = getattr(torch, case["dtype"])
        X = torch.randn(case["x_shape"], generator=gen, dtype=dtype)
        K = torch.randn(case["k_shape"], generator=gen, dtype=dtype)
        if case.get("values"):
            X = torch.tensor(case["values"]["X"], dtype=dtype)
            K = torch.tensor(case["values"]["K"], dtype=dtype)
        X_before, K_before = X.clone(), K.clone()
        info = _call(fn, X, K)
        info["inputs_unchanged"] = bool(
            torch.equal(X, X_before) and torch.equal(K, K_before)
        )
        info["conv_calls"] = conv_calls[0]
        results.append(info)
    return results


def _child(job: dict, result_fd: int, output_fd: int) -> None:
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = sys.stdout
    try:
        _limit(job["limits"]["memory_bytes"], job["limits"]["cpu_seconds"])
        _forbid_new_processes()
    except OSError:
        os._exit(SETUP_FAILED)  # never run student code unconfined
    namespace = {"__name__": "__main__", "torch": torch, "F": F, "nn": nn, "d2l": d2l}
    namespace["device"] = torch.device("cpu")
    cell_errors = []
    for source in job["setup"] + job["cells"]:
        try:
            exec(compile(source, "<cell>", "exec"), namespace)
        except BaseException as error:
            cell_errors.append(f"{type(error).__name__}: {str(error)[:300]}")
    for name, stand_in in STAND_INS.items():
        if name != job["function"] and name in job.get("stand_ins", ()):
            namespace[name] = stand_in
    conv_calls = [0]
    _count_builtin_convolutions(conv_calls)
    reply = {
        "cell_errors": cell_errors,
        "cases": _run_cases(job, namespace, conv_calls),
    }
    os.write(result_fd, json.dumps(reply).encode())
    os._exit(0)


def _drain(
    buffers: dict[int, bytearray], caps: dict[int, int], deadline: float
) -> bool:
    """Read the child's pipes until both close or the deadline passes (False on timeout).

    Everything is read, so a child that prints without end never blocks on a full pipe; only
    the first ``caps[fd]`` bytes are kept.
    """
    open_fds = set(buffers)
    while open_fds:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        ready, _, _ = select.select(list(open_fds), [], [], remaining)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.discard(fd)
            else:
                buffers[fd].extend(chunk[: max(0, caps[fd] - len(buffers[fd]))])
    return True


def run_job(job: dict) -> dict:
    """Fork a child for one job; return its reply with how it ended, whatever it did."""
    result_r, result_w = os.pipe()
    output_r, output_w = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(result_r)
            os.close(output_r)
            _child(job, result_w, output_w)
        finally:
            os._exit(70)
    os.close(result_w)
    os.close(output_w)
    limits = job["limits"]
    buffers = {result_r: bytearray(), output_r: bytearray()}
    caps = {result_r: limits["result_bytes"], output_r: limits["output_bytes"]}
    finished = _drain(buffers, caps, start + limits["wall_seconds"])
    if not finished:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    for fd in (result_r, output_r):
        os.close(fd)
    reply = {
        "output": buffers[output_r].decode("utf-8", "replace"),
        "seconds": round(time.monotonic() - start, 3),
    }
    if not finished:
        reply["status"] = "timeout"
    elif os.WIFSIGNALED(status):
        reply["status"] = f"killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
    elif os.WEXITSTATUS(status) != 0:
        reply["status"] = f"exited with code {os.WEXITSTATUS(status)}"
    else:
        reply["status"] = "ok"
    reply["child"] = buffers[result_r].decode("utf-8", "replace")
    return reply


def main() -> None:
    print(json.dumps({"ready": True, "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        print(json.dumps(run_job(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
