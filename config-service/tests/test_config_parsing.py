"""Pure pieces: flat keys, Spring's merge, .properties, names, webhook payloads, the cipher."""

from __future__ import annotations

import pytest

from chassis.config_client import merge_property_sources
from chassis.keys import flatten, unflatten
from config_service.crypto.service import Cipher, CipherError
from config_service.environment.names import InvalidName, check_app, check_label, check_profiles
from config_service.environment.parsing import ParseError, parse_file, parse_properties, render_properties
from config_service.environment.service import app_names_for
from config_service.monitor.service import paths_from_payload

SEARCH = ["deploy/config-repo"]


def test_flatten_is_springs_shape_and_unflatten_inverts_it() -> None:
    tree = {"a": {"b": [1, {"c": True}], "d": None}, "routes": {"/products": {"error_rate": 0.5}}}
    flat = flatten(tree)
    assert flat == {"a.b[0]": 1, "a.b[1].c": True, "a.d": "", "routes./products.error_rate": 0.5}
    assert unflatten(flat) == {
        "a": {"b": [1, {"c": True}], "d": ""},
        "routes": {"/products": {"error_rate": 0.5}},
    }


def test_unflatten_binds_relaxed_names() -> None:
    assert unflatten({"breaker.fail-max": 3}) == {"breaker": {"fail_max": 3}}


def test_merge_overlays_and_a_higher_list_replaces_the_whole_list() -> None:
    highest_first = [
        {"users[0].name": "x", "k": 2},
        {"users[0].name": "a", "users[1].name": "b", "k": 1, "j": 0},
    ]
    assert merge_property_sources(highest_first) == {"users[0].name": "x", "k": 2, "j": 0}


def test_properties_parser_follows_java_rules() -> None:
    text = "# comment\n! also\na=1\nb : two words\nc\\:d = e\nlong = one \\\n    two\nunicode=\\u00e9\n  spaced   value\n"
    assert parse_properties(text) == {
        "a": "1",
        "b": "two words",
        "c:d": "e",
        "long": "one two",
        "unicode": "é",
        "spaced": "value",
    }


def test_rendered_properties_parse_back() -> None:
    flat = {"a.b": True, "x[0]": 1.5, "odd key:=": "v\nw", "lead": " space"}
    assert parse_properties(render_properties(flat)) == {
        "a.b": "true",
        "x[0]": "1.5",
        "odd key:=": "v\nw",
        "lead": " space",
    }


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("a.yml", b"a: [1, 2\n"),
        ("a.yml", b"- just\n- a list\n"),
        ("a.json", b"{nope"),
        ("a.yml", b"\xff\xfe"),
    ],
)
def test_malformed_files_raise_parse_error(name: str, data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_file(name, data)


def test_yaml_scalars_keep_their_json_types() -> None:
    assert parse_file("a.yml", b"i: 1\nf: 0.5\nb: true\ns: '1'\nd: 2024-01-02\n") == {
        "i": 1,
        "f": 0.5,
        "b": True,
        "s": "1",
        "d": "2024-01-02",
    }


@pytest.mark.parametrize("bad", ["..", "../etc", "a/b", "a b", "-x", "a;b", "", "a\x00"])
def test_app_names_reject_traversal_and_odd_characters(bad: str) -> None:
    with pytest.raises(InvalidName):
        check_app(bad)


def test_profiles_and_labels() -> None:
    assert check_profiles("docker,dev") == ["docker", "dev"]
    with pytest.raises(InvalidName):
        check_profiles("docker,,dev")
    assert check_label("feature(_)x") == "feature/x"
    for bad in ["..(_)etc", "(_)abs", "a(_)(_)b", "x.lock", "a(_).hidden", "a b"]:
        with pytest.raises(InvalidName):
            check_label(bad)


def test_changed_files_map_to_apps() -> None:
    assert app_names_for("deploy/config-repo/catalog.yml", SEARCH) == ["catalog"]
    assert app_names_for("deploy/config-repo/auth-service.yml", SEARCH) == ["auth-service", "auth"]
    assert app_names_for("deploy/config-repo/catalog-docker.properties", SEARCH) == [
        "catalog-docker",
        "catalog",
    ]
    assert app_names_for("deploy/config-repo/application-docker.yml", SEARCH) == ["*"]
    assert app_names_for("deploy/config-repo/README.md", SEARCH) == []
    assert app_names_for("catalog.yml", SEARCH) == []  # outside the search path: not configuration
    assert app_names_for("src/catalog.yml", SEARCH) == []


def test_push_payloads_of_github_and_gitlab() -> None:
    github = {
        "ref": "refs/heads/main",
        "commits": [{"added": ["a.yml"], "modified": ["b.yml"], "removed": []}, {"removed": ["c.yml"]}],
        "head_commit": {"modified": ["b.yml"]},
    }
    assert paths_from_payload(github) == ["a.yml", "b.yml", "c.yml"]
    gitlab = {"object_kind": "push", "commits": [{"added": [], "modified": ["x.yml"], "removed": []}]}
    assert paths_from_payload(gitlab) == ["x.yml"]
    assert paths_from_payload({"zen": "ping event"}) == []


def test_cipher_round_trip_and_wrong_key() -> None:
    one, other = Cipher("key-one"), Cipher("key-two")
    token = one.encrypt("s3cret ✓")
    assert token != one.encrypt("s3cret ✓")  # a fresh nonce each time
    assert "s3cret" not in token
    assert one.decrypt("{cipher}" + token) == "s3cret ✓"
    with pytest.raises(CipherError):
        other.decrypt(token)
    with pytest.raises(CipherError):
        one.decrypt(token[:-2] + ("00" if token[-2:] != "00" else "11"))  # altered
    with pytest.raises(CipherError):
        one.decrypt("not hex")
