"""The compose file model: interpolation, .env, merging with !reset/!override, extends, include,
profiles, validation errors with file and line, cycles, and the config hash."""

from __future__ import annotations

import json
import pathlib

import jsonschema
import pytest
from bockrose import ConfigError, InterpolationError, load_project, service_hash
from bockrose._interpolate import interpolate_str, parse_env_file
from bockrose._schema import is_valid, schema
from bockrose._yaml import load_yaml, strip_tags


def write(tmp: pathlib.Path, name: str, text: str) -> str:
    p = tmp / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return str(p)


def load(tmp, text, env=None, **kw):
    f = write(tmp, "compose.yaml", text)
    return load_project([f], environ=env or {}, warn=lambda m: None, **kw)


@pytest.mark.parametrize(
    ("text", "env", "want"),
    [
        ("${V}", {"V": "x"}, "x"),
        ("$V-y", {"V": "x"}, "x-y"),
        ("${V:-d}", {"V": ""}, "d"),
        ("${V-d}", {"V": ""}, ""),
        ("${V-d}", {}, "d"),
        ("${V:-${W:-inner}}", {}, "inner"),
        ("$${V}", {"V": "x"}, "${V}"),
        ("a$$b", {}, "a$b"),
        ("${V:+alt}", {"V": "1"}, "alt"),
        ("${V:+alt}", {}, ""),
        ("${UNSET}", {}, ""),
    ],
)
def test_interpolation(text, env, want):
    assert interpolate_str(text, env, lambda m: None) == want


def test_required_variable_error_names_file_and_message(tmp_path):
    with pytest.raises(
        InterpolationError, match=r"compose.yaml:3: required variable TAG is missing a value: set it"
    ):
        load(tmp_path, "services:\n  a:\n    image: busybox:${TAG:?set it}\n")


def test_unset_variable_warns(tmp_path):
    warnings = []
    f = write(tmp_path, "compose.yaml", "services:\n  a:\n    image: busybox:${NOPE}\n")
    p = load_project([f], environ={}, warn=warnings.append)
    assert p.services["a"]["image"] == "busybox:"
    assert any("NOPE" in w for w in warnings)


def test_dotenv_and_env_file_and_shell_precedence(tmp_path):
    write(tmp_path, ".env", "TAG=fromdotenv\nexport OTHER='lit $x'\nREF=${TAG}-2\n")
    p = load(
        tmp_path, "services:\n  a:\n    image: busybox:${TAG}\n    environment: ['O=${OTHER}', 'R=${REF}']\n"
    )
    assert p.services["a"]["image"] == "busybox:fromdotenv"
    assert p.services["a"]["environment"] == {"O": "lit $x", "R": "fromdotenv-2"}
    p = load(tmp_path, "services:\n  a:\n    image: busybox:${TAG}\n", env={"TAG": "shell"})
    assert p.services["a"]["image"] == "busybox:shell"
    alt = write(tmp_path, "alt.env", "TAG=alt\n")
    p = load(tmp_path, "services:\n  a:\n    image: busybox:${TAG}\n", env_files=[alt])
    assert p.services["a"]["image"] == "busybox:alt"


def test_env_file_parser_quotes():
    env = parse_env_file("A=1\n# c\nB=\"x\\ny\"\nC='$A'\nD=$A # trailing\n", "e")
    assert env == {"A": "1", "B": "x\ny", "C": "$A", "D": "1"}


def test_merge_rules_reset_override(tmp_path):
    base = write(
        tmp_path,
        "compose.yaml",
        """
services:
  app:
    image: busybox
    command: [echo, base]
    environment: {A: "1", B: "2"}
    ports: ["8080:80", "9090:90"]
    volumes: ["data:/data", "./x:/x"]
    dns: [1.1.1.1]
    labels: [keep=1]
volumes: {data: {}}
""",
    )
    over = write(
        tmp_path,
        "override.yaml",
        """
services:
  app:
    command: [echo, over]
    environment: {B: "3", C: "4", A: !reset null}
    ports: ["8080:80"]
    volumes: ["other:/data"]
    dns: [8.8.8.8]
    labels: !override [only=1]
volumes: {other: {}}
""",
    )
    p = load_project([base, over], environ={}, warn=lambda m: None)
    app = p.services["app"]
    assert app["command"] == ["echo", "over"]
    assert app["environment"] == {"B": "3", "C": "4"}
    assert [(x["published"], x["target"]) for x in app["ports"]] == [("8080", 80), ("9090", 90)]
    assert [(v.get("source"), v["target"]) for v in app["volumes"]] == [
        ("other", "/data"),
        (str(tmp_path / "x"), "/x"),
    ]
    assert app["dns"] == ["1.1.1.1", "8.8.8.8"]
    assert app["labels"] == {"only": "1"}
    reset = write(tmp_path, "reset.yaml", "services:\n  app:\n    ports: !reset []\n")
    p = load_project([base, reset], environ={}, warn=lambda m: None)
    assert "ports" not in p.services["app"]


def test_extends_and_include(tmp_path):
    write(tmp_path, "common.yaml", "services:\n  base:\n    image: busybox\n    environment: {X: '1'}\n")
    write(tmp_path, "sub/inc.yaml", "services:\n  inc:\n    image: busybox:${T}\n    volumes: [./d:/d]\n")
    write(tmp_path, "sub/.env", "T=fromincenv\n")
    p = load(
        tmp_path,
        """
include: [sub/inc.yaml]
services:
  web:
    extends: {file: common.yaml, service: base}
    environment: {Y: '2'}
""",
    )
    assert p.services["web"]["environment"] == {"X": "1", "Y": "2"}
    assert p.services["web"]["image"] == "busybox"
    assert p.services["inc"]["image"] == "busybox:fromincenv"
    assert p.services["inc"]["volumes"][0]["source"] == str(tmp_path / "sub" / "d")


def test_include_conflict_is_an_error(tmp_path):
    write(tmp_path, "inc.yaml", "services:\n  web:\n    image: busybox\n")
    with pytest.raises(ConfigError, match="conflicts"):
        load(tmp_path, "include: [inc.yaml]\nservices:\n  web:\n    image: busybox\n")


def test_profiles(tmp_path):
    text = "services:\n  a: {image: busybox}\n  dbg: {image: busybox, profiles: [debug]}\n"
    assert set(load(tmp_path, text).services) == {"a"}
    assert set(load(tmp_path, text, profiles=["debug"]).services) == {"a", "dbg"}
    assert set(load(tmp_path, text, env={"COMPOSE_PROFILES": "debug"}).services) == {"a", "dbg"}


def test_unknown_key_names_file_and_line(tmp_path):
    with pytest.raises(ConfigError) as e:
        load(tmp_path, "services:\n  web:\n    image: busybox\n    imagee: typo\n")
    assert "compose.yaml:4" in str(e.value)
    assert "'imagee'" in str(e.value)
    with pytest.raises(ConfigError, match=r"compose.yaml:1: .*'servics'"):
        load(tmp_path, "servics: {}\n")


def test_wrong_type_names_line(tmp_path):
    with pytest.raises(ConfigError, match=r"compose.yaml:4: services.web.ports"):
        load(tmp_path, "services:\n  web:\n    image: busybox\n    ports: 80\n")


def test_depends_on_cycle_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"cycle.*a -> b -> c -> a"):
        load(
            tmp_path,
            """
services:
  a: {image: busybox, depends_on: [b]}
  b: {image: busybox, depends_on: [c]}
  c: {image: busybox, depends_on: [a]}
""",
        )


def test_undefined_dependency_and_network(tmp_path):
    with pytest.raises(ConfigError, match="depends on service 'nope'"):
        load(tmp_path, "services:\n  a: {image: busybox, depends_on: [nope]}\n")
    with pytest.raises(ConfigError, match="undefined network"):
        load(tmp_path, "services:\n  a: {image: busybox, networks: [nope]}\n")


def test_x_extensions_allowed(tmp_path):
    p = load(tmp_path, "x-anchor: &a {image: busybox}\nservices:\n  a:\n    <<: *a\n    x-note: hi\n")
    assert p.services["a"]["image"] == "busybox"
    assert "x-anchor" in p.extensions


def test_config_hash_ignores_scale_deps_build_profiles(tmp_path):
    a = load(tmp_path, "services:\n  a: {image: busybox, command: [x]}\n  b: {image: busybox}\n").services[
        "a"
    ]
    b = load(
        tmp_path,
        "services:\n  a: {image: busybox, command: [x], scale: 3, depends_on: [b],"
        " profiles: [p], pull_policy: always}\n  b: {image: busybox}\n",
        profiles=["p"],
    ).services["a"]
    c = load(tmp_path, "services:\n  a: {image: busybox, command: [y]}\n").services["a"]
    assert service_hash(a) == service_hash(b)
    assert service_hash(a) != service_hash(c)
    assert len(service_hash(a)) == 64


def test_project_name_precedence(tmp_path):
    text = "name: fromfile\nservices:\n  a: {image: busybox}\n"
    assert load(tmp_path, text).name == "fromfile"
    assert load(tmp_path, text, env={"COMPOSE_PROJECT_NAME": "fromenv"}).name == "fromenv"
    assert load(tmp_path, text, project_name="flag").name == "flag"
    with pytest.raises(ConfigError, match="invalid project name"):
        load(tmp_path, text, project_name="Bad Name")


def test_ports_short_forms(tmp_path):
    p = load(
        tmp_path, "services:\n  a:\n    image: busybox\n    ports: ['127.0.0.1:8001-8002:81-82/udp', '90']\n"
    )
    ports = p.services["a"]["ports"]
    assert ports[0] == {
        "mode": "ingress",
        "target": 81,
        "protocol": "udp",
        "host_ip": "127.0.0.1",
        "published": "8001",
    }
    assert ports[1]["published"] == "8002"
    assert ports[2] == {"mode": "ingress", "target": 90, "protocol": "tcp"}


SAMPLES = [
    "services: {a: {image: x}}",
    "services: {a: {image: x, ports: [80, '81:81', {target: 1, published: '2'}]}}",
    "services: {a: {imagee: x}}",
    "services: {a: {image: x, depends_on: {b: {condition: service_healthy}}}}",
    "services: {a: {image: x, depends_on: {b: {condition: nope}}}}",
    "services: {a: {image: x, healthcheck: {test: [CMD, 'true'], interval: 1s}}}",
    "services: {a: {image: x, healthcheck: {tst: x}}}",
    "services: {a: {build: ., volumes: [{type: bind, source: ., target: /x}]}}",
    "services: {a: {build: {context: ., bogus: 1}}}",
    "services: {a: {image: x, volumes: [{source: ., target: /x}]}}",
    "networks: {n: {ipam: {config: [{subnet: 10.0.0.0/24}]}}}",
    "networks: {n: {internal: true, foo: 1}}",
    "name: UPPER",
    "x-foo: 1\nservices: {}",
    "services: {a: {image: x, x-bockrose: {healthcheck: {tcp: 80}}}}",
    "services: {a: {image: x, deploy: {replicas: 2, resources: {limits: {memory: 10M}}}}}",
    "services: {a: {image: x, deploy: {replicas: 2, resources: {limits: {memoryy: 10M}}}}}",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_own_validator_agrees_with_jsonschema(text):
    """jsonschema is the oracle for bockrose's small validator (kept off the command's hot path)."""
    data = strip_tags(load_yaml(text, "t.yaml"))
    want = jsonschema.Draft202012Validator(schema()).is_valid(json.loads(json.dumps(data)))
    assert is_valid(data) == want


def test_schema_file_in_spec_schemas_is_the_packaged_one():
    repo = pathlib.Path(__file__).resolve().parents[2]
    assert json.loads((repo / "spec-schemas/compose-schema.json").read_text()) == schema()
    jsonschema.Draft202012Validator.check_schema(schema())
