"""Which system calls a grading child may make: one table, and the seccomp filter built from it.

Runs next to student code (bound into the sandbox beside ``harness.py``), so it imports only the
standard library. The baseline is Docker's default seccomp profile (moby's
``profiles/seccomp/default.json``) for a container with no added capabilities: an allow-list, so
whatever it leaves out (``keyctl``, ``add_key``, ``request_key``, ``bpf``, ``perf_event_open``,
``userfaultfd``, ``unshare``, ``setns``, ``mount``, ``open_by_handle_at``, ...) is refused with
EPERM. On top of it, ``DENIED`` and ``ONLY_ITSELF`` take away what Docker allows because each
container has a PID namespace of its own, while a grading child shares the sandbox with the
processes that serve later students.
"""

from __future__ import annotations

import ctypes
import errno

# Docker's no-capability allow-list, grouped by what the calls are for (names that do not exist
# on this architecture are skipped when the filter is built).
BASELINE = {
    "memory": "brk mmap mmap2 munmap mremap mprotect madvise mincore msync mlock mlock2 "
    "mlockall munlock munlockall membarrier memfd_create memfd_secret remap_file_pages "
    "pkey_alloc pkey_free pkey_mprotect",
    "files": "access faccessat faccessat2 open openat openat2 creat close close_range read "
    "readv pread64 preadv preadv2 write writev pwrite64 pwritev pwritev2 lseek _llseek "
    "stat stat64 lstat lstat64 fstat fstat64 fstatat64 newfstatat statx statfs statfs64 "
    "fstatfs fstatfs64 getdents getdents64 readlink readlinkat getcwd chdir fchdir mkdir "
    "mkdirat rmdir rename renameat renameat2 link linkat symlink symlinkat unlink unlinkat "
    "chmod fchmod fchmodat chown chown32 fchown fchown32 fchownat lchown lchown32 umask "
    "truncate truncate64 ftruncate ftruncate64 fallocate fadvise64 fadvise64_64 readahead "
    "fsync fdatasync sync syncfs sync_file_range flock fcntl fcntl64 dup dup2 dup3 ioctl "
    "utime utimes utimensat utimensat_time64 futimesat copy_file_range sendfile sendfile64 "
    "splice tee vmsplice mknod mknodat name_to_handle_at getxattr lgetxattr fgetxattr "
    "listxattr llistxattr flistxattr setxattr lsetxattr fsetxattr removexattr lremovexattr "
    "fremovexattr inotify_init inotify_init1 inotify_add_watch inotify_rm_watch "
    "fanotify_mark io_setup io_destroy io_submit io_cancel io_getevents io_pgetevents "
    "io_pgetevents_time64",
    "waiting": "pipe pipe2 poll ppoll ppoll_time64 select _newselect pselect6 "
    "pselect6_time64 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_wait "
    "epoll_wait_old epoll_pwait epoll_pwait2 eventfd eventfd2 signalfd signalfd4 "
    "timerfd_create timerfd_settime timerfd_settime64 timerfd_gettime timerfd_gettime64 "
    "futex futex_time64 futex_waitv nanosleep clock_nanosleep clock_nanosleep_time64 pause "
    "restart_syscall",
    "time": "time gettimeofday clock_gettime clock_gettime64 clock_getres "
    "clock_getres_time64 clock_adjtime clock_adjtime64 adjtimex times alarm getitimer "
    "setitimer timer_create timer_delete timer_settime timer_settime64 timer_gettime "
    "timer_gettime64 timer_getoverrun",
    "signals": "rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending rt_sigsuspend "
    "rt_sigtimedwait rt_sigtimedwait_time64 sigaltstack sigprocmask sigreturn",
    "identity and limits": "getpid getppid gettid getuid getuid32 geteuid geteuid32 getgid "
    "getgid32 getegid getegid32 getresuid getresuid32 getresgid getresgid32 getgroups "
    "getgroups32 getpgid getpgrp getsid setuid setuid32 setgid setgid32 setreuid setreuid32 "
    "setregid setregid32 setresuid setresuid32 setresgid setresgid32 setgroups setgroups32 "
    "setfsuid setfsuid32 setfsgid setfsgid32 capget capset getrlimit ugetrlimit setrlimit "
    "prlimit64 getrusage getpriority setpriority ioprio_get ioprio_set getcpu uname sysinfo "
    "getrandom prctl seccomp personality",
    "scheduling and threads' bookkeeping": "sched_yield sched_getaffinity sched_setaffinity "
    "sched_getattr sched_setattr sched_getparam sched_setparam sched_getscheduler "
    "sched_setscheduler sched_get_priority_max sched_get_priority_min sched_rr_get_interval "
    "sched_rr_get_interval_time64 set_tid_address set_robust_list get_robust_list rseq "
    "arch_prctl modify_ldt get_thread_area set_thread_area wait4 waitid waitpid "
    "process_mrelease landlock_create_ruleset landlock_add_rule landlock_restrict_self "
    "exit exit_group",
    "sockets (the sandbox has no network)": "socket socketpair socketcall bind listen accept "
    "accept4 connect getsockname getpeername getsockopt setsockopt send sendto sendmsg "
    "sendmmsg recv recvfrom recvmsg recvmmsg recvmmsg_time64 shutdown",
    "what Docker allows and the table below takes back": "fork vfork clone clone3 execve "
    "execveat kill tkill tgkill rt_sigqueueinfo rt_tgsigqueueinfo pidfd_open "
    "pidfd_send_signal ptrace process_vm_readv process_vm_writev shmget shmat shmdt shmctl "
    "msgget msgsnd msgrcv msgctl semget semop semtimedop semtimedop_time64 semctl ipc "
    "mq_open mq_unlink mq_timedsend mq_timedsend_time64 mq_timedreceive "
    "mq_timedreceive_time64 mq_notify mq_getsetattr io_uring_setup io_uring_enter "
    "io_uring_register setsid setpgid",
}

# Denied although Docker allows them, each with why: a grading child shares a PID namespace,
# an IPC namespace and a user with the processes that fork it.
DENIED = {
    "ptrace": "would attach to the process that forked it and take over later jobs",
    "process_vm_readv": "reads another process's memory without ptrace",
    "process_vm_writev": "writes another process's memory without ptrace",
    "pidfd_open": "a handle on another process (for signals or pidfd_getfd)",
    "pidfd_send_signal": "signals another process through a pidfd",
    "fork": "no new processes: each answer is one process, killed as a whole",
    "vfork": "as fork",
    "clone": "as fork, and threads too: the grader counts one thread's CPU time",
    "clone3": "as clone",
    "execve": "nothing runs but the warm interpreter the grader started",
    "execveat": "as execve",
    "shmget": "System V memory is not counted by RLIMIT_AS and outlives the process",
    "shmat": "as shmget",
    "shmdt": "as shmget",
    "shmctl": "as shmget",
    "msgget": "System V message queues outlive the process",
    "msgsnd": "as msgget",
    "msgrcv": "as msgget",
    "msgctl": "as msgget",
    "semget": "System V semaphores outlive the process",
    "semop": "as semget",
    "semtimedop": "as semget",
    "semtimedop_time64": "as semget",
    "semctl": "as semget",
    "ipc": "the 32-bit entry to all of System V IPC",
    "mq_open": "POSIX message queues also outlive the process",
    "mq_unlink": "as mq_open",
    "mq_timedsend": "as mq_open",
    "mq_timedsend_time64": "as mq_open",
    "mq_timedreceive": "as mq_open",
    "mq_timedreceive_time64": "as mq_open",
    "mq_notify": "as mq_open",
    "mq_getsetattr": "as mq_open",
    "io_uring_setup": "io_uring performs calls that this filter never sees",
    "io_uring_enter": "as io_uring_setup",
    "io_uring_register": "as io_uring_setup",
    "setsid": "stays in the session and process group that the grader kills",
    "setpgid": "as setsid",
}

# Allowed only when the first argument is the child's own pid (raise(), abort() and Python's
# signal handling signal the process itself); any other target is denied.
ONLY_ITSELF = {
    "kill": "signals to any other process, or to a group (pid 0 or negative)",
    "tkill": "as kill, for one thread",
    "tgkill": "as kill, for a thread of another process",
    "rt_sigqueueinfo": "as kill, with data",
    "rt_tgsigqueueinfo": "as tgkill, with data",
}

# Docker's argument rules, kept: no AF_VSOCK sockets, and only the harmless personalities.
AF_VSOCK = 40
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

_ALLOW = 0x7FFF0000  # SCMP_ACT_ALLOW
_DENY = 0x00050000 | errno.EPERM  # SCMP_ACT_ERRNO(EPERM)
_CMP_NE, _CMP_EQ = 1, 4  # enum scmp_compare


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def allowed_names() -> list[str]:
    """The baseline minus everything this module denies or restricts."""
    names = {name for group in BASELINE.values() for name in group.split()}
    return sorted(names - set(DENIED) - set(ONLY_ITSELF) - {"socket", "personality"})


class Filter:
    """The filter, built once (in the zygote) and loaded by each child with its own pid.

    Building it from the table costs about 6 ms of ctypes calls in a freshly forked child; built
    before the fork, the child adds only the rules that name its pid and loads the result.
    """

    def __init__(self) -> None:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [
            ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
            ctypes.POINTER(_ArgCmp),
        ]  # fmt: skip
        lib.seccomp_load.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self._ctx = lib.seccomp_init(_DENY)  # anything not allowed below: EPERM
        if not self._ctx:
            raise OSError("seccomp: cannot create a filter")
        for name in allowed_names():
            self._rule(name)
        self._rule("socket", (0, _CMP_NE, AF_VSOCK))
        for persona in PERSONALITIES:
            self._rule("personality", (0, _CMP_EQ, persona))

    def _rule(self, name: str, *conditions: tuple[int, int, int]) -> None:
        number = self._lib.seccomp_syscall_resolve_name(name.encode())
        if number < 0:
            return  # not a system call on this architecture
        array = (_ArgCmp * max(1, len(conditions)))(
            *[_ArgCmp(arg, op, value, 0) for arg, op, value in conditions]
        )
        if self._lib.seccomp_rule_add_array(
            self._ctx, _ALLOW, number, len(conditions), array
        ):
            raise OSError(f"seccomp: cannot add the rule for {name}")

    def install(self, own_pid: int) -> None:
        """Load the filter into this process (irrevocable; inherited by nothing, as fork is
        denied). Call it in a forked child only: it adds that child's pid to this copy.

        Raises OSError when it cannot: the caller must then not run student code.
        """
        for name in ONLY_ITSELF:
            self._rule(name, (0, _CMP_EQ, own_pid))
        if self._lib.seccomp_load(self._ctx) != 0:
            raise OSError("seccomp: cannot load the filter")
