"""Deployment files for users: docker-compose.yml, Dockerfile, the systemd unit and the
example config. No Docker engine runs in CI, so these tests check what can be checked
without one: structure, cross-file consistency, Debian package names, the health probe
against a real HTTP server, and (when the tools exist) compose-go's loader, systemd-analyze
and the project's own config loader."""

import base64
import configparser
import ctypes
import ctypes.util
import http.server
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="pyyaml is not installed (pip install pyyaml)")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_PATH = ROOT / "docker-compose.yml"
DOCKERFILE_PATH = ROOT / "Dockerfile"
UNIT_PATH = ROOT / "processor" / "churnstream.service"
CONF_EXAMPLE_PATH = ROOT / "processor" / "churnstream.conf.example"
CONFIG_H_PATH = ROOT / "processor" / "config" / "config.h"
CONFIG_C_PATH = ROOT / "processor" / "config" / "config.c"

EXPECTED_TOPICS = {"events", "events.dlq", "churn-alerts"}
NODES = {"redis-node-1", "redis-node-2", "redis-node-3"}
SCALED = NODES | {"redis-cluster-init", "churnstream-scaled"}
METRICS_PORT = 9464


# ----------------------------------------------------------------------------- helpers


def load_compose():
    with open(COMPOSE_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


def compose_unescape(text):
    """Compose interpolation as it applies to this file: `$$` is a literal `$`. Any other
    `$` would pull a value from the host environment, which this file never does."""
    assert re.search(r"(?<!\$)\$(?!\$)", text.replace("$$", "")) is None, text
    return text.replace("$$", "$")


def env_of(service):
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def parse_listeners(text):
    """'NAME://host:port,...' -> list of (name, host, port)."""
    out = []
    for item in text.split(","):
        m = re.fullmatch(r"([A-Z_]+)://([^:/]*):(\d+)", item.strip())
        assert m, f"bad listener {item!r}"
        out.append((m.group(1), m.group(2), int(m.group(3))))
    return out


def parse_port(spec):
    """Short compose port syntax -> (host_ip or None, published, target, protocol)."""
    spec = str(spec)
    proto = "tcp"
    if "/" in spec:
        spec, proto = spec.split("/", 1)
    parts = spec.split(":")
    if len(parts) == 1:
        return None, None, int(parts[0]), proto
    if len(parts) == 2:
        return None, int(parts[0]), int(parts[1]), proto
    if len(parts) == 3:
        return parts[0], int(parts[1]), int(parts[2]), proto
    raise AssertionError(f"bad port mapping {spec!r}")


def dockerfile_instructions(text):
    """Logical instructions (keyword, argument) with continuations joined and comment lines
    dropped, as the Docker builder reads them."""
    out, buf = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not buf):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        if buf.strip():
            keyword, _, arg = buf.strip().partition(" ")
            out.append((keyword.upper(), arg.strip()))
        buf = ""
    return out


def dockerfile_stages():
    """List of stages: {'from': image, 'name': alias, 'instructions': [...]}."""
    stages = []
    for keyword, arg in dockerfile_instructions(DOCKERFILE_PATH.read_text()):
        if keyword == "FROM":
            words = arg.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append({"from": words[0], "name": name, "instructions": []})
        else:
            assert stages, f"{keyword} before FROM"
            stages[-1]["instructions"].append((keyword, arg))
    return stages


def apt_installed(stage):
    pkgs = []
    for keyword, arg in stage["instructions"]:
        if keyword != "RUN":
            continue
        for command in re.split(r"&&|;", arg):
            words = command.split()
            if words[:2] == ["apt-get", "install"]:
                pkgs += [w for w in words[2:] if not w.startswith("-")]
    return pkgs


def stage_instr(stage, keyword):
    return [arg for kw, arg in stage["instructions"] if kw == keyword]


def makefile_pkgs():
    m = re.search(r"^PKGS\s*:=\s*(.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert m, "PKGS not found in Makefile"
    return m.group(1).split()


def known_config_keys():
    """Keys the config table can have, read loosely from config.h: the dotted names in the
    cfg_t field comments, plus each field name with its first '_' as '.' (and without a
    `_ms` unit suffix, since durations take units in text). kafka.* is open-ended."""
    text = CONFIG_H_PATH.read_text()
    body = text[text.index("typedef struct cfg_s") : text.index("} cfg_t;")]
    keys = set(re.findall(r"/\*\s*([a-z]+\.[a-z_]+(?:\.[a-z_]+)*)", body))
    for line in body.splitlines():
        code = line.split("/*")[0].strip()
        m = re.match(r"^[\w\s\*]+?\b([a-z][a-z0-9_]*)(\[\w+\])?;$", code)
        if not m or m.group(2) or m.group(1).startswith("kafka_"):
            continue
        field = m.group(1)
        if "_" not in field:
            continue
        key = field.replace("_", ".", 1)
        keys.add(key)
        if key.endswith("_ms"):
            keys.add(key[: -len("_ms")])
    return keys


def librdkafka_conf_error(name, value):
    """None when librdkafka accepts the property, else its error text."""
    path = ctypes.util.find_library("rdkafka") or "librdkafka.so.1"
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        pytest.skip(f"librdkafka shared library not loadable ({e}); install librdkafka1")
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                      ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_conf_destroy.argtypes = [ctypes.c_void_p]
    conf = lib.rd_kafka_conf_new()
    err = ctypes.create_string_buffer(512)
    try:
        rc = lib.rd_kafka_conf_set(conf, name.encode(), value.encode(), err, len(err))
    finally:
        lib.rd_kafka_conf_destroy(conf)
    return None if rc == 0 else err.value.decode()


def check_config_key(key, value, source):
    """Asserts `key` can be a churnstream config key (see known_config_keys)."""
    if key.startswith("kafka."):
        err = librdkafka_conf_error(key[len("kafka."):], value)
        assert err is None, f"{source}: librdkafka rejects {key}={value}: {err}"
        return
    assert key in known_config_keys(), f"{source}: {key} matches no cfg_t field in config.h"
    if CONFIG_C_PATH.exists():
        assert f'"{key}"' in CONFIG_C_PATH.read_text(), f"{source}: {key} not in config.c"


def env_to_key(name):
    """CHURNSTREAM_<KEY> -> key: dots became underscores, so match against the known keys;
    kafka.* pass-through keys are dotted librdkafka names."""
    assert name.startswith("CHURNSTREAM_"), name
    suffix = name[len("CHURNSTREAM_"):].lower()
    if suffix.startswith("kafka_"):
        return "kafka." + suffix[len("kafka_"):].replace("_", ".")
    matches = [k for k in known_config_keys() if k.replace(".", "_") == suffix]
    assert len(matches) == 1, f"{name}: matches keys {matches}"
    return matches[0]


def example_config():
    entries = []
    for lineno, line in enumerate(CONF_EXAMPLE_PATH.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert "=" in line, f"churnstream.conf.example:{lineno}: not key=value: {line!r}"
        key, value = (part.strip() for part in line.split("=", 1))
        entries.append((lineno, key, value))
    return entries


def dockerfile_env(stage):
    env = {}
    for arg in stage_instr(stage, "ENV"):
        for item in shlex.split(arg):
            k, _, v = item.partition("=")
            env[k] = v
    return env


# ----------------------------------------------------------------------------- compose


def test_compose_services_and_images():
    c = load_compose()
    assert "version" not in c, "the top-level version key is obsolete"
    s = c["services"]
    assert set(s) == {"kafka", "redis", "topic-init", "churnstream"} | SCALED
    for name in SCALED:  # the scaled profile never starts with a plain `up`
        assert s[name].get("profiles") == ["scaled"], name
    for name in {"kafka", "redis", "topic-init", "churnstream"}:
        assert "profiles" not in s[name], name
    assert s["kafka"]["image"] == "apache/kafka:3.9.1"
    assert s["topic-init"]["image"] == s["kafka"]["image"], "the tools must match the broker"
    assert s["redis"]["image"] == "redis:7"
    build = s["churnstream"]["build"]
    context = build if isinstance(build, str) else build["context"]
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (ROOT / context / dockerfile).resolve() == DOCKERFILE_PATH


def _strings(node):
    if isinstance(node, dict):
        for k, v in node.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


def test_compose_uses_no_host_interpolation():
    strings = list(_strings(load_compose()))
    assert any("$$" in s for s in strings), "expected escaped $ in topic-init and the probe"
    for s in strings:
        compose_unescape(s)


def test_kafka_kraft_env_is_consistent():
    c = load_compose()
    kafka = c["services"]["kafka"]
    env = env_of(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}

    node_id = int(env["KAFKA_NODE_ID"])
    voters = [v.split("@") for v in env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")]
    assert [int(v[0]) for v in voters] == [node_id]

    listeners = parse_listeners(env["KAFKA_LISTENERS"])
    names = [n for n, _, _ in listeners]
    ports = [p for _, _, p in listeners]
    assert len(set(names)) == len(names), "listener names must be unique"
    assert len(set(ports)) == len(ports), "listener ports must be unique"
    port_of = {n: p for n, _, p in listeners}

    protocol_map = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(protocol_map) == set(names), "every listener needs a protocol and no extras"
    assert set(protocol_map.values()) <= {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}

    controllers = env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(",")
    assert set(controllers) <= set(names)
    # The single voter is this node, reached on the controller listener's port under the
    # name other containers resolve (the service name / hostname).
    voter_host, voter_port = voters[0][1].rsplit(":", 1)
    assert voter_host in {"kafka", kafka.get("hostname")}
    assert int(voter_port) == port_of[controllers[0]]

    advertised = parse_listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    for name, host, port in advertised:
        assert name in names and name not in controllers, f"{name} must be a broker listener"
        assert port == port_of[name], f"{name} advertises {port}, listens on {port_of[name]}"
        assert host, f"{name} must advertise a host clients can resolve"
    inter_broker = env.get("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT")
    assert inter_broker in [n for n, _, _ in advertised]

    for var in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        assert env[var] == "1", var
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"

    # The image refuses to start in KRaft mode without CLUSTER_ID; Kafka's Uuid is 16 bytes
    # in unpadded URL-safe base64 (22 characters), and the CLI rejects a leading '-'.
    cluster_id = env["CLUSTER_ID"]
    assert len(cluster_id) == 22 and not cluster_id.startswith("-")
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16

    mounts = [v.split(":")[1] for v in kafka.get("volumes", [])]
    assert env["KAFKA_LOG_DIRS"] in mounts, "broker data must live on the named volume"


# KafkaDockerWrapper (the image's entry point) turns KAFKA_FOO_BAR into foo.bar, except for
# these launcher variables (its list, verbatim: KAFKA_HEAP_OPT without the S is theirs).
KAFKA_IMAGE_EXCLUDES = {"KAFKA_VERSION", "KAFKA_HEAP_OPT", "KAFKA_LOG4J_OPTS", "KAFKA_OPTS",
                        "KAFKA_JMX_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_GC_LOG_OPTS",
                        "KAFKA_LOG4J_ROOT_LOGLEVEL", "KAFKA_LOG4J_LOGGERS",
                        "KAFKA_TOOLS_LOG4J_LOGLEVEL", "KAFKA_JMX_HOSTNAME"}


def kafka_server_properties(env):
    props = {}
    for key, value in env.items():
        if key.startswith("KAFKA_") and key not in KAFKA_IMAGE_EXCLUDES:
            name = key[len("KAFKA_"):].lower().replace("_", ".").replace("...", "-").replace("..", "_")
            props[name] = value
    return props


def test_kafka_accepts_the_broker_config(tmp_path):
    """Kafka's own config validation (KafkaConfig, through `StorageTool format`, as the image
    runs it on first start) on the properties the image renders from the environment, with
    the jars `make deps` caches for the test broker, when their version matches the image."""
    kafka = load_compose()["services"]["kafka"]
    version = kafka["image"].split(":")[1]
    cache = Path(os.environ.get("CHURNSTREAM_CACHE", Path.home() / ".cache" / "churnstream"))
    libs = cache / f"kafka-{version}" / "libs"
    if shutil.which("java") is None or not list(libs.glob("kafka_2.13-*.jar")):
        pytest.skip(f"java or Kafka {version} jars ({libs}) missing: run `make deps`")
    env = env_of(kafka)
    props = kafka_server_properties(env)
    assert props["controller.quorum.voters"] == "1@kafka:9093"  # the conversion itself
    props["log.dirs"] = str(tmp_path / "data")
    conf = tmp_path / "server.properties"
    conf.write_text("".join(f"{k}={v}\n" for k, v in sorted(props.items())))
    r = subprocess.run(["java", "-Xmx256m", "-cp", f"{libs}/*", "kafka.tools.StorageTool", "format",
                        "-t", env["CLUSTER_ID"], "-c", str(conf)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    assert (tmp_path / "data" / "meta.properties").exists()


def test_kafka_host_listener_is_published_on_its_port():
    kafka = load_compose()["services"]["kafka"]
    env = env_of(kafka)
    published = {(pub, target) for _, pub, target, _ in map(parse_port, kafka.get("ports", []))}
    host_listeners = [(n, h, p) for n, h, p in parse_listeners(env["KAFKA_ADVERTISED_LISTENERS"])
                      if h in {"localhost", "127.0.0.1"}]
    assert host_listeners, "no listener for clients on the host"
    for name, _, port in host_listeners:
        # The advertised address is what host clients dial next: same port both sides.
        assert (port, port) in published, f"{name} advertises {port} but it is not published"


@pytest.mark.parametrize(
    "service,dependency,condition",
    [
        ("churnstream", "redis", "service_healthy"),
        ("churnstream", "kafka", "service_healthy"),
        ("churnstream", "topic-init", "service_completed_successfully"),
        ("topic-init", "kafka", "service_healthy"),
    ],
)
def test_depends_on_conditions(service, dependency, condition):
    deps = load_compose()["services"][service]["depends_on"]
    assert isinstance(deps, dict), "long syntax needed to state conditions"
    assert deps[dependency]["condition"] == condition


def test_healthy_dependencies_have_healthchecks():
    services = load_compose()["services"]
    targets = {dep for svc in services.values() if isinstance(svc.get("depends_on"), dict)
               for dep, spec in svc["depends_on"].items() if spec.get("condition") == "service_healthy"}
    assert targets == {"kafka", "redis"} | NODES
    for name in targets | {"churnstream", "churnstream-scaled"}:
        hc = services[name].get("healthcheck")
        assert hc and not hc.get("disable"), f"{name} has no healthcheck"
        assert hc["test"][0] in {"CMD", "CMD-SHELL"} and len(hc["test"]) >= 2


def topic_init_commands():
    svc = load_compose()["services"]["topic-init"]
    assert svc["entrypoint"][:2] == ["/bin/bash", "-ec"], "errors must fail the job"
    script = compose_unescape("\n".join(svc["command"]))
    return [shlex.split(line) for line in script.splitlines() if "--create" in line]


def test_topic_init_creates_the_configured_topics():
    services = load_compose()["services"]
    assert services["topic-init"]["restart"] == "no"
    created = {}
    for argv in topic_init_commands():
        opts = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("--")}
        assert "--if-not-exists" in argv, "a second `up` must not fail"
        assert opts["--bootstrap-server"] == "kafka:9092"
        assert opts["--replication-factor"] == "1"
        assert re.fullmatch(r"[a-zA-Z0-9._-]{1,249}", opts["--topic"])
        created[opts["--topic"]] = int(opts["--partitions"])
    assert set(created) == EXPECTED_TOPICS
    assert created["events"] == 4

    env = env_of(services["churnstream"])
    assert {env["CHURNSTREAM_TOPIC_EVENTS"], env["CHURNSTREAM_TOPIC_DLQ"],
            env["CHURNSTREAM_TOPIC_ALERTS"]} == set(created)
    if CONFIG_C_PATH.exists():
        text = CONFIG_C_PATH.read_text()
        for topic in EXPECTED_TOPICS:
            assert f'"{topic}"' in text, f"config.c default topics changed: {topic}"


def test_processor_reaches_kafka_on_an_advertised_listener():
    services = load_compose()["services"]
    bootstrap = env_of(services["churnstream"])["CHURNSTREAM_KAFKA_BOOTSTRAP_SERVERS"]
    advertised = parse_listeners(env_of(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"])
    assert bootstrap in {f"{h}:{p}" for _, h, p in advertised}
    assert bootstrap.split(":")[0] == "kafka", "containers must use the service name"


def test_port_mappings_parse_and_match_metrics_port():
    services = load_compose()["services"]
    host_ports = []
    for name, svc in services.items():
        for spec in svc.get("ports", []):
            host_ip, published, target, proto = parse_port(spec)
            assert proto == "tcp" and 0 < target < 65536
            if published is not None:
                host_ports.append((host_ip, published))
    assert len(set(host_ports)) == len(host_ports), "two services publish one host port"
    env = env_of(services["churnstream"])
    assert int(env["CHURNSTREAM_METRICS_PORT"]) == METRICS_PORT
    assert env["CHURNSTREAM_METRICS_BIND"] == "0.0.0.0", "published ports need a non-loopback bind"
    mapped = [parse_port(p) for p in services["churnstream"]["ports"]]
    assert (None, METRICS_PORT, METRICS_PORT, "tcp") in mapped


def test_redis_persists_to_a_named_volume():
    c = load_compose()
    redis = c["services"]["redis"]
    cmd = redis["command"]
    assert cmd[0] == "redis-server"
    opts = dict(zip(cmd[1::2], cmd[2::2]))
    assert opts == {"--appendonly": "yes", "--appendfsync": "everysec"}
    assert "--maxmemory" not in cmd, "eviction would drop user state"
    assert any(v.split(":")[1] == "/data" for v in redis["volumes"])
    declared = set(c.get("volumes") or {})
    used = {v.split(":")[0] for svc in c["services"].values() for v in svc.get("volumes", [])}
    assert used == declared == {"kafka-data", "redis-data"} | {n + "-data" for n in NODES}


def test_scaled_profile_runs_processors_on_a_redis_cluster():
    s = load_compose()["services"]
    for n in NODES:
        cmd = s[n]["command"]
        opts = dict(zip(cmd[1::2], cmd[2::2]))
        assert cmd[0] == "redis-server" and opts["--cluster-enabled"] == "yes", n
        assert opts["--appendonly"] == "yes" and "--maxmemory" not in cmd, n
        assert s[n]["volumes"] == [f"{n}-data:/data"], "each node keeps its own nodes.conf and AOF"
        assert "ports" not in s[n]
    init = s["redis-cluster-init"]
    assert init["entrypoint"][:2] == ["/bin/bash", "-ec"], "errors must fail the job"
    script = compose_unescape("\n".join(init["command"]))
    assert "--cluster create" in script and "--cluster-replicas 0" in script
    assert all(n in script for n in NODES)
    assert {d: v["condition"] for d, v in init["depends_on"].items()} == {
        n: "service_healthy" for n in NODES}
    proc = s["churnstream-scaled"]
    env = env_of(proc)
    assert env["CHURNSTREAM_REDIS_CLUSTER"] == "true"
    assert env["CHURNSTREAM_MODEL_SYNC_INTERVAL"] not in ("", "0"), "replicas share the model"
    assert env["CHURNSTREAM_REDIS_HOST"] in NODES
    assert env["CHURNSTREAM_KAFKA_GROUP_ID"] != env_of(s["churnstream"]).get(
        "CHURNSTREAM_KAFKA_GROUP_ID", "churnstream"), "its own group"
    assert proc["depends_on"]["redis-cluster-init"]["condition"] == "service_completed_successfully"
    assert "ports" not in proc, "replicas would collide on one host port"
    assert proc["healthcheck"] == s["churnstream"]["healthcheck"]
    for name, value in env.items():
        check_config_key(env_to_key(name), value, f"docker-compose.yml churnstream-scaled {name}")


def test_restart_policies():
    services = load_compose()["services"]
    assert services["churnstream"]["restart"] == "unless-stopped"
    assert services["topic-init"]["restart"] == "no"


def churnstream_env_items():
    return sorted(env_of(load_compose()["services"]["churnstream"]).items())


@pytest.mark.parametrize("name,value", churnstream_env_items())
def test_churnstream_env_names_map_to_config_keys(name, value):
    assert name.startswith("CHURNSTREAM_")
    check_config_key(env_to_key(name), value, f"docker-compose.yml {name}")


# ----------------------------------------------------------------------------- health probe


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (http.server naming)
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dockerfile_probe():
    runtime = dockerfile_stages()[-1]
    (arg,) = stage_instr(runtime, "HEALTHCHECK")
    cmd = json.loads(arg[arg.index("CMD") + len("CMD"):].strip())
    return cmd


def compose_probe():
    test = load_compose()["services"]["churnstream"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    return [compose_unescape(part) for part in test[1:]]


@pytest.mark.parametrize("which", ["Dockerfile", "compose"])
@pytest.mark.parametrize("status,healthy", [(200, True), (503, False), (None, False)])
def test_health_probe_against_http_server(which, status, healthy):
    """Runs the real probe command with bash against a local HTTP server: healthy on 200,
    unhealthy on 503 and when nothing listens."""
    if shutil.which("bash") is None:
        pytest.skip("bash not installed")
    probe = dockerfile_probe() if which == "Dockerfile" else compose_probe()
    assert "/healthz" in probe[-1]
    port = _free_port()
    server = None
    if status is not None:
        handler = type("H", (_Health,), {"status": status})
        server = http.server.HTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = dict(os.environ, CHURNSTREAM_METRICS_PORT=str(port))
        rc = subprocess.run(probe, env=env, timeout=10, capture_output=True).returncode
    finally:
        if server:
            server.shutdown()
            server.server_close()
    assert (rc == 0) == healthy, f"probe exit {rc} with status {status}"


# ----------------------------------------------------------------------------- Dockerfile


def test_dockerfile_is_multi_stage_on_bookworm_slim():
    stages = dockerfile_stages()
    assert [s["from"] for s in stages] == ["debian:bookworm-slim"] * 2
    build, runtime = stages
    assert build["name"] and runtime["name"]
    copies_from = [a for a in stage_instr(runtime, "COPY") if a.startswith("--from=")]
    assert copies_from and all(a.split()[0] == f"--from={build['name']}" for a in copies_from)
    runs = " ".join(stage_instr(build, "RUN"))
    assert re.search(r"make OPT=-O2 .*churnstream", runs)
    assert "make install PREFIX=/usr/local DESTDIR=/out" in runs


def test_dockerfile_runtime_contract():
    runtime = dockerfile_stages()[-1]
    assert json.loads(stage_instr(runtime, "ENTRYPOINT")[0]) == ["churnstream"]
    assert json.loads(stage_instr(runtime, "CMD")[0]) == ["run"]
    assert stage_instr(runtime, "EXPOSE") == [str(METRICS_PORT)]
    assert stage_instr(runtime, "USER") == ["churnstream"], "must not run as root"
    assert any("useradd" in r and "churnstream" in r for r in stage_instr(runtime, "RUN"))
    (hc,) = stage_instr(runtime, "HEALTHCHECK")
    assert "--timeout=" in hc and "/healthz" in hc
    env = dockerfile_env(runtime)
    assert env["CHURNSTREAM_METRICS_PORT"] == str(METRICS_PORT)
    assert env["CHURNSTREAM_METRICS_BIND"] == "0.0.0.0"
    assert env["CHURNSTREAM_SCHEMAS_DIR"] == "/usr/local/share/churnstream/schemas"


@pytest.mark.parametrize("name", sorted(dockerfile_env(dockerfile_stages()[-1])))
def test_dockerfile_env_names_map_to_config_keys(name):
    value = dockerfile_env(dockerfile_stages()[-1])[name]
    check_config_key(env_to_key(name), value, f"Dockerfile ENV {name}")


def test_runtime_stage_installs_no_dev_packages():
    build, runtime = dockerfile_stages()
    runtime_pkgs = apt_installed(runtime)
    assert runtime_pkgs, "runtime stage installs nothing?"
    assert [p for p in runtime_pkgs if p.endswith("-dev") or p in {"build-essential", "pkg-config"}] == []
    assert "ca-certificates" in runtime_pkgs
    assert {"build-essential", "pkg-config"} <= set(apt_installed(build))


def test_copy_sources_exist_and_are_not_dockerignored():
    build = dockerfile_stages()[0]
    ignored = [l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines()
               if l.strip() and not l.startswith("#")]
    missing = []
    for arg in stage_instr(build, "COPY"):
        for src in arg.split()[:-1]:
            top = src.rstrip("/")
            assert top not in ignored, f"{src} is excluded by .dockerignore"
            if not (ROOT / top).exists():
                missing.append(top)
    for top in missing:
        assert top in {"state", "schemas"}, f"COPY source {top} does not exist"
    if missing:
        pytest.skip(f"{missing} not in this tree yet (other branches); docker build needs them")


def _require_debian12_apt():
    if shutil.which("apt-cache") is None:
        pytest.skip("apt-cache not available: cannot check Debian package names")
    release = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    if "VERSION_CODENAME=bookworm" not in release:
        pytest.skip("not Debian 12: package names are only checked against bookworm's lists")
    if not list(Path("/var/lib/apt/lists").glob("*_Packages*")):
        pytest.skip("apt package lists missing: run apt-get update to check package names")


@pytest.mark.parametrize("stage_index", [0, 1], ids=["build", "runtime"])
def test_dockerfile_packages_exist_in_debian12(stage_index):
    _require_debian12_apt()
    pkgs = apt_installed(dockerfile_stages()[stage_index])
    found = apt_show(pkgs)
    assert [p for p in pkgs if p not in found] == [], "not in Debian 12"


def apt_show(pkgs):
    """{package: {field: value}} for the candidate version of each package apt knows; one
    apt-cache call (it exits 0 even when some names are unknown, so read what it printed)."""
    r = subprocess.run(["apt-cache", "show", "--no-all-versions", *pkgs], capture_output=True, text=True)
    out = {}
    for record in r.stdout.split("\n\n"):
        fields = dict(re.findall(r"^([\w-]+): (.*)$", record, re.M))
        if "Package" in fields:
            out[fields["Package"]] = fields
    return out


def _dpkg_owner(path):
    for candidate in {path, re.sub(r"^/usr/lib/", "/lib/", path), re.sub(r"^/lib/", "/usr/lib/", path)}:
        r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0]
    raise AssertionError(f"no Debian package owns {path}")


def test_build_stage_provides_every_makefile_pkg_config_module():
    """Each pkg-config module of the Makefile comes from a -dev package the build stage
    installs (directly, or as the first alternative apt picks for one of its Depends)."""
    _require_debian12_apt()
    if shutil.which("pkg-config") is None or shutil.which("dpkg") is None:
        pytest.skip("pkg-config or dpkg not installed")
    listed = set(apt_installed(dockerfile_stages()[0]))
    provided = set(listed)
    for pkg, fields in apt_show(sorted(listed)).items():
        for dep in filter(None, fields.get("Depends", "").split(",")):
            provided.add(dep.split("|")[0].split()[0].split(":")[0])
    for module in makefile_pkgs():
        pc = subprocess.run(["pkg-config", "--path", module], capture_output=True, text=True)
        assert pc.returncode == 0, f"{module}.pc not installed here (make deps)"
        owner = _dpkg_owner(os.path.realpath(pc.stdout.strip()))
        assert owner in provided, f"{module} comes from {owner}, which the build stage lacks"


def _base_image_packages():
    """What debian:bookworm-slim holds: the Essential packages and everything they depend
    on (a debootstrap minbase), computed from the apt lists."""
    essential = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Essential}\\n"],
                               capture_output=True, text=True).stdout
    roots = [line.split()[0] for line in essential.splitlines() if line.endswith(" yes")]
    assert "libc-bin" in roots or "bash" in roots, "no Essential packages found"
    r = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                        "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *roots],
                       capture_output=True, text=True)
    return {line.strip() for line in r.stdout.splitlines() if not line.startswith(" ")} | set(roots)


PROBE_C = r"""
#include <librdkafka/rdkafka.h>
#include <avro.h>
#include <hiredis/hiredis.h>
#include <cblas.h>
#include <microhttpd.h>
#include <zlib.h>
#include <curl/curl.h>
#include <jansson.h>
int main(void) {
    json_t *j = json_object();
    float a = 1, b = 2, c = 0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
    return rd_kafka_version() > 0 && avro_schema_string() != NULL && redisFree != NULL &&
           MHD_get_version() != NULL && zlibVersion() != NULL && curl_version() != NULL &&
           j != NULL && c == 2.0f ? 0 : 1;
}
"""


def test_runtime_stage_provides_every_linked_library(tmp_path):
    """Links a probe against the Makefile's libraries exactly as the binary is linked, then
    maps each NEEDED soname to its Debian package: each must be installed by the runtime
    stage or be part of the slim base (Priority: required)."""
    _require_debian12_apt()
    for tool in ("cc", "pkg-config", "dpkg", "ldd", "readelf"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    pkgs = makefile_pkgs()
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", *pkgs], capture_output=True, text=True)
    assert flags.returncode == 0, flags.stderr
    src = tmp_path / "probe.c"
    src.write_text(PROBE_C)
    exe = tmp_path / "probe"
    cc = subprocess.run(["cc", "-std=c11", str(src), "-o", str(exe), *flags.stdout.split(), "-lm", "-lpthread"],
                        capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
    assert subprocess.run([str(exe)]).returncode == 0
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                        subprocess.run(["readelf", "-d", str(exe)], capture_output=True, text=True).stdout)
    resolved = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(["ldd", str(exe)], capture_output=True,
                                                                      text=True).stdout, re.M))
    runtime = set(apt_installed(dockerfile_stages()[-1]))
    base = _base_image_packages()
    assert len(needed) >= len(pkgs)
    for soname in needed:
        owner = _dpkg_owner(os.path.realpath(resolved[soname]))
        assert owner in runtime or owner in base, \
            f"{soname} comes from {owner}, which the runtime stage does not install"


# ----------------------------------------------------------------------------- systemd


def load_unit():
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(UNIT_PATH.read_text())
    return parser


def test_systemd_unit_runs_the_daemon():
    unit = load_unit()
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    svc = unit["Service"]
    assert shlex.split(svc["ExecStart"]) == ["/usr/local/bin/churnstream", "run", "-c",
                                             "/etc/churnstream/churnstream.conf"]
    expected = {"Type": "simple", "User": "churnstream", "Restart": "on-failure",
                "KillSignal": "SIGTERM", "TimeoutStopSec": "30", "NoNewPrivileges": "yes",
                "ProtectSystem": "strict", "PrivateTmp": "yes", "ProtectHome": "yes"}
    assert {k: svc.get(k) for k in expected} == expected
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    # Same grace period everywhere the daemon is stopped.
    grace = load_compose()["services"]["churnstream"]["stop_grace_period"]
    assert grace == f"{svc['TimeoutStopSec']}s"
    # The daemon's own watchdog must fire first (exit 1 with a log line), and the stop budget
    # under it must hold the README's 10 s flush (issue 11, item 8).
    header = (ROOT / "processor" / "daemon" / "daemon.h").read_text()
    define = {m.group(1): int(m.group(2)) for m in
              re.finditer(r"^#define (DM_[A-Z_]+)\s+(\d+)", header, re.M)}
    assert define["DM_SHUTDOWN_MAX_S"] < int(svc["TimeoutStopSec"]), define
    assert define["DM_FLUSH_TIMEOUT_MS"] == 10000, define
    assert (define["DM_FLUSH_TIMEOUT_MS"] + define["DM_CLOSE_TIMEOUT_MS"] + 5000
            < define["DM_SHUTDOWN_MAX_S"] * 1000), define
    # `make install PREFIX=/usr/local` in the Dockerfile puts the binary where ExecStart looks.
    assert "PREFIX=/usr/local" in " ".join(stage_instr(dockerfile_stages()[0], "RUN"))


def test_systemd_analyze_verify(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed: unit checked by the configparser test only")
    # verify also requires ExecStart's binary to exist; point it at one that does, so every
    # other directive is checked by systemd's own parser. Any warning fails the test.
    binary = ROOT / "build" / "churnstream"
    target = str(binary) if binary.exists() else shutil.which("true")
    unit = tmp_path / "churnstream.service"
    unit.write_text(UNIT_PATH.read_text().replace("/usr/local/bin/churnstream", target))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


# ----------------------------------------------------------------------------- example config


def test_example_config_keys_exist():
    entries = example_config()
    keys = [k for _, k, _ in entries]
    assert len(keys) == len(set(keys)), "duplicate keys"
    for lineno, key, value in entries:
        assert value != "", f"churnstream.conf.example:{lineno}: {key} has no value"
        check_config_key(key, value, f"churnstream.conf.example:{lineno}")


def test_example_config_agrees_with_compose():
    conf = {k: v for _, k, v in example_config()}
    assert {conf["topic.events"], conf["topic.dlq"], conf["topic.alerts"]} == EXPECTED_TOPICS
    assert int(conf["metrics.port"]) == METRICS_PORT
    assert conf["schemas.dir"] == dockerfile_env(dockerfile_stages()[-1])["CHURNSTREAM_SCHEMAS_DIR"]


LOADER_C = r"""
#include <stdio.h>
#include "config.h"
/* argv[1] = config file; argv[2..] = NAME=VALUE environment entries. */
int main(int argc, char **argv) {
    char err[512];
    cfg_t *cfg = cfg_new();
    if (!cfg) return 3;
    if (cfg_load_file(cfg, argv[1], err, sizeof err) != 0 ||
        cfg_load_env(cfg, argv + 2, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        cfg_destroy(cfg);
        return 1;
    }
    printf("%s %d %s %s %s %d %s\n", cfg->redis_host, cfg->redis_port, cfg->topic_events,
           cfg->topic_dlq, cfg->topic_alerts, cfg->metrics_port, cfg->metrics_bind);
    cfg_destroy(cfg);
    return argc > 0 ? 0 : 2;
}
"""


def test_project_config_loader_accepts_deployment_files(tmp_path):
    """The real cfg_load_file/cfg_load_env read the example config and the environment the
    image and compose set; values must come through."""
    src = tmp_path / "loader.c"
    src.write_text(LOADER_C)
    exe = tmp_path / "loader"
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", *makefile_pkgs()],
                           capture_output=True, text=True).stdout.split()
    includes = [f"-I{d}" for d in sorted((ROOT / "processor").iterdir()) if d.is_dir()]
    base = ["cc", "-std=c11", "-D_GNU_SOURCE", *includes, f"-I{ROOT / 'state'}", str(src)]
    subprocess.run(["make", "-C", str(ROOT), "-j2", "build/libchurnstream.a"], check=True,
                   capture_output=True)
    r = subprocess.run(base + [str(ROOT / "build" / "libchurnstream.a"), "-o", str(exe), *flags,
                               "-lm", "-lpthread"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    out = subprocess.run([str(exe), str(CONF_EXAMPLE_PATH)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["127.0.0.1", "6379", "events", "events.dlq", "churn-alerts",
                                  str(METRICS_PORT), "127.0.0.1"]

    env = dict(dockerfile_env(dockerfile_stages()[-1]))
    env.update(env_of(load_compose()["services"]["churnstream"]))
    out = subprocess.run([str(exe), str(CONF_EXAMPLE_PATH), *(f"{k}={v}" for k, v in sorted(env.items()))],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["redis", "6379", "events", "events.dlq", "churn-alerts",
                                  str(METRICS_PORT), "0.0.0.0"]


# ----------------------------------------------------------------------------- Go checkers
# The loaders Docker itself uses, built from their Go modules (cached), since no engine runs
# here: compose-go (inside Docker Compose v2) and BuildKit's Dockerfile frontend and linter.

COMPOSE_GO = ("github.com/compose-spec/compose-go/v2", "v2.16.2", """package main

import (
	"context"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

// Schema validation, interpolation, then the consistency checks (depends_on, volumes, ...).
func main() {
	opts, err := cli.NewProjectOptions([]string{os.Args[1]}, cli.WithName("churnstream"))
	if err == nil {
		_, err = opts.LoadProject(context.Background())
	}
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}
""")

BUILDKIT = ("github.com/moby/buildkit", "v0.23.2", """package main

import (
	"fmt"
	"os"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Parses a Dockerfile as `docker build` does; any parse error or lint warning fails.
func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	res, err := parser.Parse(f)
	if err != nil {
		fmt.Println("parse:", err)
		os.Exit(1)
	}
	bad := len(res.Warnings) > 0
	for _, w := range res.Warnings {
		fmt.Println("warning:", w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, desc, url, msg string, loc []parser.Range) {
		fmt.Println("lint:", rule, msg)
		bad = true
	}})
	if _, _, err := instructions.Parse(res.AST, lint); err != nil {
		fmt.Println("instructions:", err)
		os.Exit(1)
	}
	if bad {
		os.Exit(1)
	}
}
""")


def go_checker(name, spec):
    """Builds (once, cached) a small Go program against a pinned module; skips (reported
    with -rs) only when Go is not installed; a failed build (module proxy unreachable,
    compile error) fails the test."""
    module, version, source = spec
    go = shutil.which("go")
    if go is None:
        pytest.skip(f"go not installed: {name} check skipped")
    work = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "churnstream" / f"{name}-check"
    exe = work / f"{name}-{version}"
    if not exe.exists():
        work.mkdir(parents=True, exist_ok=True)
        (work / "main.go").write_text(source)
        (work / "go.mod").write_text(f"module {name}check\n\ngo 1.22\n")
        for step in ([go, "get", f"{module}@{version}"], [go, "mod", "tidy"],
                     [go, "build", "-o", str(exe), "."]):
            r = subprocess.run(step, cwd=work, capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                # A failed build is a failure, never a silent skip: the checker is the only
                # thing that loads these files the way Docker does (go present, so it must work).
                pytest.fail(f"could not build the {name} checker ({module}@{version}): "
                            f"`{' '.join(step)}` exited {r.returncode}: {r.stderr.strip()[-600:]}")
    return exe


def test_compose_go_loads_the_file(tmp_path):
    exe = go_checker("composego", COMPOSE_GO)
    r = subprocess.run([str(exe), str(COMPOSE_PATH)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    # The checker must be able to fail: an unknown service key is a schema error.
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(COMPOSE_PATH.read_text().replace("    hostname: kafka\n", "    hostname: kafka\n    bogus: 1\n"))
    r = subprocess.run([str(exe), str(bad)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and "bogus" in r.stdout


def test_buildkit_parses_the_dockerfile(tmp_path):
    exe = go_checker("buildkit", BUILDKIT)
    r = subprocess.run([str(exe), str(DOCKERFILE_PATH)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # The checker must be able to fail: a misspelt HEALTHCHECK flag is a parse error.
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE_PATH.read_text().replace("--interval=", "--intervall="))
    r = subprocess.run([str(exe), str(bad)], capture_output=True, text=True)
    assert r.returncode != 0 and "intervall" in r.stdout
