"""The syscall table is one table: Docker's baseline, what we take back, and the README's copy."""

from __future__ import annotations

import re

from autograder.paths import ROOT
from autograder.sandbox.inside import syscall_policy


def baseline() -> set[str]:
    return {
        name for group in syscall_policy.BASELINE.values() for name in group.split()
    }


def test_every_call_taken_back_is_one_docker_allows():
    taken_back = set(syscall_policy.DENIED) | set(syscall_policy.ONLY_ITSELF)
    assert taken_back <= baseline()


def test_nothing_denied_or_restricted_is_on_the_allow_list():
    allowed = set(syscall_policy.allowed_names())
    assert not allowed & (set(syscall_policy.DENIED) | set(syscall_policy.ONLY_ITSELF))
    assert not allowed & {"keyctl", "add_key", "request_key", "bpf", "unshare", "mount"}


def test_readme_table_lists_every_denied_call_with_its_reason():
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| (.+) \|$", readme, flags=re.MULTILINE))
    assert rows == syscall_policy.DENIED
