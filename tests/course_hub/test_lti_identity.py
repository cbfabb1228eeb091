"""Who an LMS user is on the hub, and what a registration may say (no LMS, no hub started).

The inputs are what a platform (or a person editing their own LMS profile) could send.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from course_hub.lti.identity import (
    INSTRUCTOR,
    LEARNER,
    TEACHING_ASSISTANT,
    TEACHING_ASSISTANT_SHORT,
    IdentityRefusedError,
    Person,
    course_role,
    derived_id,
    lms_role,
    person_from_claims,
    person_from_member,
    resolve,
)
from course_hub.lti.keys import (
    KeyFolderError,
    new_key,
    public_key_set,
    retire_key,
    signing_key,
    use_key,
)
from course_hub.lti.registration import RegistrationError, read_registration

DOMAINS = ("example.edu",)


def person(email: str = "", uid: str = "u-1", **kw) -> Person:
    return Person(user_id=uid, email=email, **kw)


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("alice@example.edu", "alice"),
        ("Alice@EXAMPLE.edu", "alice"),  # logins are lower case; domains too
        ("o.brien@example.edu", None),  # a dot: not an account name the hub makes
        ("../../etc@example.edu", None),
        ("root; rm -rf /@example.edu", None),
        ("grader-channels-a@example.edu", None),  # a course's grading account
        ("alice@example.edu.evil.org", None),  # another domain that starts alike
        ("alice@evil.org", None),
        ("alice", None),
        ("", None),
    ],
)
def test_an_id_comes_only_from_a_safe_local_part_of_an_institution_email(
    email, expected
):
    if expected is None:
        with pytest.raises(IdentityRefusedError):
            derived_id(person(email), "email", DOMAINS)
    else:
        assert derived_id(person(email), "email", DOMAINS) == expected


def test_the_sourcedid_rule_uses_the_institution_id_and_refuses_a_missing_one():
    assert derived_id(person(sourcedid="S0042"), "sourcedid", DOMAINS) == "s0042"
    with pytest.raises(IdentityRefusedError, match="no institution id"):
        derived_id(person("alice@example.edu"), "sourcedid", DOMAINS)


def test_a_bound_user_keeps_their_id_whatever_their_email_becomes():
    bound = {"u-1": "alice"}
    assert resolve(person("alicia.new@example.edu"), "email", DOMAINS, bound) == (
        "alice",
        False,
    )
    assert resolve(person("bob@example.edu", uid="u-2"), "email", DOMAINS, bound) == (
        "bob",
        True,
    )


def test_an_id_bound_to_one_lms_user_is_never_given_to_another():
    with pytest.raises(IdentityRefusedError, match="belongs to another LMS user"):
        resolve(
            person("alice@example.edu", uid="u-2"), "email", DOMAINS, {"u-1": "alice"}
        )
    with pytest.raises(IdentityRefusedError, match="no user id"):
        resolve(person("carol@example.edu", uid=""), "email", DOMAINS, {})


def test_claims_and_members_that_are_not_text_become_empty_not_errors():
    hostile = {
        "sub": {"$ne": None},
        "email": ["alice@example.edu"],
        "https://purl.imsglobal.org/spec/lti/claim/roles": "Instructor",
        "https://purl.imsglobal.org/spec/lti/claim/lis": "x",
        "name": "Eve\u202e\x00" + "x" * 10_000,
    }
    p = person_from_claims(hostile)
    assert (p.user_id, p.email, p.roles, p.sourcedid) == ("", "", (), "")
    assert len(p.name) <= 256 and "\x00" not in p.name and "\u202e" not in p.name
    m = person_from_member({"user_id": True, "roles": [LEARNER, 7], "email": 3})
    assert (m.user_id, m.roles, m.email) == ("", (LEARNER,), "3")


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ([LEARNER], "student"),
        ([INSTRUCTOR], "instructor"),
        ([INSTRUCTOR, TEACHING_ASSISTANT], "ta"),
        ([TEACHING_ASSISTANT_SHORT], "ta"),
        ([LEARNER, INSTRUCTOR], "instructor"),
        (
            ["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"],
            None,
        ),
        (["Instructor"], None),  # a bare name is not a role URI
        ([], None),
    ],
)
def test_lti_role_uris_map_to_the_hubs_course_roles(roles, expected):
    assert lms_role(roles) == expected


@pytest.mark.parametrize(
    ("lms", "hub", "expected"),
    [
        ("student", "student", "student"),
        ("instructor", "instructor", "instructor"),
        ("instructor", "ta", "ta"),  # the lesser of two staff roles
        ("ta", "instructor", "ta"),
        ("instructor", "student", None),  # the LMS cannot make a student staff here
        ("student", "ta", None),
        (None, "student", None),
        ("student", None, None),  # not in the hub's roster for the course
    ],
)
def test_the_lms_and_the_hub_roster_must_agree_and_the_lesser_staff_role_counts(
    lms, hub, expected
):
    if expected is None:
        with pytest.raises(IdentityRefusedError):
            course_role(lms, hub)
    else:
        assert course_role(lms, hub) == expected


GOOD = {
    "issuer": "https://lms.example.edu",
    "client_id": "42",
    "deployment_ids": ["1"],
    "authorize_url": "https://lms.example.edu/auth",
    "jwks_url": "https://lms.example.edu/jwks",
    "token_url": "https://lms.example.edu/token",
    "email_domains": ["example.edu"],
    "courses": {"channels-a": {"context_id": "c1"}},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"token_url": "http://lms.example.edu/token"},
            "token_url must be an https URL",
        ),
        ({"jwks_url": "file:///etc/passwd"}, "jwks_url must be an https URL"),
        ({"deployment_ids": "1"}, "deployment_ids must be a list"),
        ({"student_id_from": "name"}, "student_id_from must be one of"),
        ({"email_domains": []}, "needs email_domains"),
        ({"courses": {"../x": {"context_id": "c1"}}}, "is not a hub course id"),
        (
            {
                "courses": {
                    "channels-a": {"context_id": "c1"},
                    "channels-b": {"context_id": "c1"},
                }
            },
            "one LMS course is linked to two hub courses",
        ),
        (
            {
                "courses": {
                    "channels-a": {"context_id": "c1", "lineitems_url": "http://x"}
                }
            },
            "https",
        ),
    ],
)
def test_a_registration_that_would_misroute_a_launch_or_a_token_is_refused(
    tmp_path: Path, change, message
):
    path = tmp_path / "lti.json"
    path.write_text(json.dumps(GOOD | change))
    with pytest.raises(RegistrationError, match=message):
        read_registration(path)


def test_a_registration_that_is_not_json_is_refused_with_its_path(tmp_path: Path):
    path = tmp_path / "lti.json"
    path.write_bytes(b"\xff{")
    with pytest.raises(RegistrationError, match=r"lti\.json: not JSON"):
        read_registration(path)


def test_keys_rotate_published_before_used_and_the_signing_key_is_never_retired(
    tmp_path: Path,
):
    folder = tmp_path / "keys"
    first = new_key(folder)
    second = new_key(folder)
    assert signing_key(folder).kid == first  # the new key is published, not used
    assert {k["kid"] for k in public_key_set(folder)["keys"]} == {first, second}
    assert (folder / f"{first}.pem").stat().st_mode & 0o777 == 0o600
    with pytest.raises(KeyFolderError, match="is the signing key"):
        retire_key(folder, first)
    use_key(folder, second)
    retire_key(folder, first)
    assert [k["kid"] for k in public_key_set(folder)["keys"]] == [second]
    assert (folder / "retired" / f"{first}.pem").is_file()
    with pytest.raises(KeyFolderError, match="no key"):
        use_key(folder, "not-a-kid")
    # Only the public half is published.
    assert all(
        set(k) == {"kty", "e", "n", "kid", "alg", "use"}
        for k in public_key_set(folder)["keys"]
    )


def test_a_launch_replayed_to_a_restarted_hub_is_refused_and_expired_ones_are_forgotten(
    tmp_path: Path,
):
    """The attacker holds a whole launch (token and cookies) and posts it again after the hub
    restarted, within the token's life: the hub that starts opens the same record."""
    from course_hub.lti.launch import UsedLaunches

    path, now = tmp_path / "lti-launches.sqlite", 1_000_000.0
    issuer = "https://lms.example.edu"
    launch, other, later = (f"{issuer}\nnonce-{i}" for i in (1, 2, 3))
    assert UsedLaunches(path).use(launch, expires=now + 360, now=now)
    restarted = UsedLaunches(path)
    assert not restarted.use(launch, expires=now + 360, now=now + 200)
    # A student's next launch goes through.
    assert restarted.use(other, expires=now + 360, now=now + 200)
    # Past its expiry the token's own check refuses it; the record keeps nothing that old.
    assert restarted.use(later, expires=now + 900, now=now + 400)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT key FROM used_launch").fetchall() == [(later,)]
