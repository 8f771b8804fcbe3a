"""The deployment files (Dockerfile, deploy/compose.yaml, deploy/k8s/), checked offline against what the code reads.

No Docker daemon, registry or cluster here, so nothing is built or run. What is checked:
- the Kubernetes manifests against the API schemas of a pinned Kubernetes version (kubernetes-validate ships
  them: this layer refuses sockets, so the check is offline), strict (an unknown field fails);
- the compose files against the compose-spec JSON schema (the copy check-jsonschema vendors, with its licence);
- every command is a real subcommand of the real argument parsers, every WARMSERVE_* variable is one the
  settings read, and the settings each role gets (environment + the CURVE key files its volumes mount)
  build without an error, with a real keys folder;
- the Dockerfile (dockerfile-parse): non-root numeric USER, STOPSIGNAL, tini, CPU and GPU variants, the COPY
  sources exist and pass .dockerignore, the cache-filling step names real functions.
hadolint runs in tests/process/test_deploy.py (it is a binary).
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import importlib
import importlib.resources
import importlib.util
import io
import json
import re
import shlex
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

import dashboard.__main__ as dashboard_cli
import dashboard.settings as dashboard_settings
from model_backend import cli as backend_cli
from model_backend import keys_command
from model_backend import settings as backend_settings
from model_backend.settings import BrokerSettings, ServerSettings, build_settings, env_names

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_FILES = (DEPLOY / "compose.yaml", DEPLOY / "compose.gpu.yaml")
#: the Kubernetes version the manifests are checked against (kubernetes-validate ships its schemas)
K8S_VERSION = "1.33.0"
#: the variables settings_from reads by hand, beside the fields' own (checked by behaviour below)
HAND_READ_ENV = ("WARMSERVE_DASH_USERS", "WARMSERVE_DASH_AUTH_FILE")
ENV_NAME = re.compile(r"\bWARMSERVE_[A-Z0-9_]+\b")
MODULES = {"model_backend": backend_cli.build_parser, "dashboard": dashboard_cli.build_parser}


# -- helpers -----------------------------------------------------------------------------------


def k8s_documents() -> list[tuple[Path, dict]]:
    docs = []
    for path in sorted(K8S.rglob("*.yaml")):
        docs.extend((path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def k8s_objects(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _path, doc in k8s_documents() if doc["kind"] == kind}


def compose(path: Path = COMPOSE_FILES[0]) -> dict:
    return yaml.safe_load(path.read_text())


def env_example() -> dict[str, str]:
    lines = (DEPLOY / "env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, from ``variables`` (deploy/env.example)."""
    def one(match: re.Match) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3) or ""
        if name in variables:
            return variables[name]
        assert op != ":?", f"${{{name}}} is required but deploy/env.example does not set it"
        return rest if op == ":-" else ""
    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}", one, value)


def known_env_names() -> set[str]:
    """Every WARMSERVE_* variable a settings class reads (the one mechanism), plus the hand-read ones."""
    names = set(HAND_READ_ENV)
    for module in (backend_settings, dashboard_settings):
        for value in vars(module).values():
            if dataclasses.is_dataclass(value) and isinstance(value, type) and hasattr(value, "env_prefix"):
                for f in dataclasses.fields(value):
                    names.update(env_names(value, f))
    names.add(backend_settings.ENV_PREFIX + "CACHE_DIR")  # default_cache_dir
    return names


def python_module_command(command: list[str]) -> tuple[str, list[str]]:
    assert command[:2] == ["python", "-m"], f"expected `python -m MODULE ...`, got {command}"
    return command[2], command[3:]


def parse_command(command: list[str]):
    """The real parser's namespace for ``python -m model_backend|dashboard ...`` (SystemExit if it is not a command)."""
    module, argv = python_module_command(command)
    assert module in MODULES, f"{module} is not one of the image's programs"
    return MODULES[module]().parse_args(argv)


@pytest.fixture
def keys(tmp_path) -> Path:
    """A real CURVE keys folder, as `python -m model_backend keys init` makes it."""
    folder = tmp_path / "keys"
    keys_command.init_keys(folder)
    return folder


def secret_key_source(keys_dir: Path, key: str) -> Path:
    """The KEYS file behind a Secret key, as deploy/k8s/secrets/secrets.example.yaml's commands name them."""
    for folder in ("clients", "workers"):
        if key.startswith(folder + "-"):
            return keys_dir / folder / key[len(folder) + 1:]
    return keys_dir / key


def mounted_secret(tmp_path: Path, keys_dir: Path, volume: dict, name: str) -> Path:
    """The folder a pod sees for a Secret volume with ``items``, filled from a real keys folder."""
    folder = tmp_path / "mounted" / name
    for item in volume["secret"]["items"]:
        target = folder / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(secret_key_source(keys_dir, item["key"]).read_bytes())
        target.chmod(0o600)
    return folder


def pod_spec(name: str) -> dict:
    return k8s_objects("Deployment")[name]["spec"]["template"]["spec"]


def container_env(spec: dict) -> dict[str, str]:
    """The environment a container gets from its ConfigMaps and Secrets (envFrom) and its own env."""
    container = spec["containers"][0]
    configmaps, secrets = k8s_objects("ConfigMap"), k8s_objects("Secret")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(configmaps[source["configMapRef"]["name"]]["data"])
        else:
            env.update(secrets[source["secretRef"]["name"]]["stringData"])
    env.update({item["name"]: item["value"] for item in container.get("env", [])})
    return env


def remap(env: dict[str, str], mounts: dict[str, Path]) -> dict[str, str]:
    """Container paths (/keys, /config/users.txt, /data) -> this test's folders."""
    mapped = dict(env)
    for name, value in env.items():
        for container_path, local in mounts.items():
            if value == container_path or value.startswith(container_path + "/"):
                mapped[name] = str(local) + value[len(container_path):]
    return mapped


# -- Kubernetes ----------------------------------------------------------------------------------


def test_k8s_manifests_validate_against_the_pinned_kubernetes_schemas():
    documents = k8s_documents()
    assert {doc["kind"] for _path, doc in documents} >= {"Deployment", "Service", "ConfigMap", "Secret",
                                                         "PodDisruptionBudget", "PersistentVolumeClaim"}
    for path, doc in documents:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises ValidationError naming the field


def test_k8s_validation_is_strict_enough_to_catch_a_misspelt_field():
    broken = copy.deepcopy(k8s_objects("Deployment")["warmserve-dashboard"])
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_workers_ask_for_a_gpu_each_and_run_the_gpu_image():
    worker = pod_spec("warmserve-worker")["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker["image"].endswith(":gpu")
    assert parse_command(worker["command"]).command == "serve"


def test_dashboard_probes_readiness_on_health_and_liveness_that_survives_a_dead_backend():
    deployment = k8s_objects("Deployment")["warmserve-dashboard"]
    assert deployment["spec"]["replicas"] >= 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ready, live = container["readinessProbe"]["exec"]["command"], container["livenessProbe"]["exec"]["command"]
    assert ready[1:] == ["/app/deploy/healthcheck.py", "ready"]
    assert live[1:] == ["/app/deploy/healthcheck.py", "live"]
    healthcheck = load_healthcheck()
    assert healthcheck.HEALTH_PATH == "/api/v1/health"
    # backend down: the health route answers 503; the pod leaves the Service but is not restarted
    assert not healthcheck.healthy("ready", 503) and healthcheck.healthy("live", 503)


#: the jobs worker exits within its stop grace (WARMSERVE_DASH_JOBS_STOP_GRACE_S) plus this (2.3-3.5 s measured,
#: tests/process/test_jobs_worker_ops.py)
JOBS_EXIT_S = 5


def test_grace_periods_cover_the_sigterm_budget(tmp_path, keys):
    """Every role stops within 2 s of SIGTERM (README); the dashboard first sleeps in preStop; the jobs worker
    gives running monolith runs its stop grace first."""
    shutdown_s = 2
    for name, deployment in k8s_objects("Deployment").items():
        spec = deployment["spec"]["template"]["spec"]
        pre_stop = spec["containers"][0].get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        sleep_s = int(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0
        assert spec["terminationGracePeriodSeconds"] >= sleep_s + shutdown_s + 3, name
    jobs = dashboard_settings.settings_from(environ=k8s_env(tmp_path, keys, "warmserve-jobs-worker"))
    assert pod_spec("warmserve-jobs-worker")["terminationGracePeriodSeconds"] >= jobs.jobs_stop_grace_s + JOBS_EXIT_S + 3


def test_the_jobs_worker_serves_its_metrics_where_it_is_probed_and_scraped(tmp_path, keys):
    container = pod_spec("warmserve-jobs-worker")["containers"][0]
    settings = dashboard_settings.settings_from(environ=k8s_env(tmp_path, keys, "warmserve-jobs-worker"))
    assert settings.jobs_metrics_host == "0.0.0.0"
    assert [port["containerPort"] for port in container["ports"]] == [settings.jobs_metrics_port]
    service = compose()["services"]["jobs-worker"]
    environment = {k: str(v) for k, v in service["environment"].items()}
    assert f"127.0.0.1:{environment['WARMSERVE_DASH_JOBS_METRICS_PORT']}/metrics" in " ".join(service["healthcheck"]["test"])
    stop_grace_s = float(environment["WARMSERVE_DASH_JOBS_STOP_GRACE_S"])
    assert int(service["stop_grace_period"].rstrip("s")) >= stop_grace_s + JOBS_EXIT_S + 3


def test_broker_probes_do_not_depend_on_workers():
    """Workers reach a broker through its Service: a readiness check that needed workers would lock them out."""
    for name in k8s_broker_services():
        container = pod_spec(name)["containers"][0]
        assert "tcpSocket" in container["readinessProbe"] and "tcpSocket" in container["livenessProbe"]
        service = k8s_objects("Service")[name]
        assert {port["port"] for port in service["spec"]["ports"]} == {5576, 5577}
        assert parse_command(container["command"]).command == "broker"


def k8s_broker_services() -> list[str]:
    """The Services that select a broker Deployment (one each)."""
    brokers = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in k8s_objects("Deployment").items()
               if parse_command(d["spec"]["template"]["spec"]["containers"][0]["command"]).command == "broker"}
    services = []
    for name, service in k8s_objects("Service").items():
        selected = [b for b, labels in brokers.items() if service["spec"]["selector"].items() <= labels.items()]
        assert len(selected) <= 1, f"Service {name} spreads over several brokers: clients must reach each by name"
        services += [name] if selected else []
    assert len(services) == len(brokers), "every broker has a Service of its own"
    return sorted(services)


def test_k8s_has_no_single_broker_every_worker_connects_to_each_and_every_client_lists_each(tmp_path, keys):
    services = k8s_broker_services()
    assert len(services) >= 2
    frontends = {f"tcp://{name}:5576" for name in services}
    backends = {f"tcp://{name}:5577" for name in services}
    worker_env = k8s_env(tmp_path, keys, "warmserve-worker")
    assert set(build_settings(ServerSettings, environ=worker_env).connect_addresses) == backends
    for deployment in ("warmserve-dashboard", "warmserve-jobs-worker"):
        env = k8s_env(tmp_path, keys, deployment)
        settings = dashboard_settings.settings_from(environ=env)
        assert set(settings.client_settings().addresses) == frontends, deployment
        assert set(env["WARMSERVE_ADDRESS"].split(",")) == frontends  # the command line in the pod
    key_secrets = {next(v["secret"]["secretName"] for v in pod_spec(name)["volumes"] if v["name"] == "keys")
                   for name in services}
    assert len(key_secrets) == 1, "clients pin one server key: every broker mounts the same pair"
    budgets = [b for b in k8s_objects("PodDisruptionBudget").values()
               if all(b["spec"]["selector"]["matchLabels"].items() <= pod_labels(name).items() for name in services)]
    assert budgets and budgets[0]["spec"]["minAvailable"] == 1  # a node drain keeps one broker up


def pod_labels(deployment: str) -> dict:
    return k8s_objects("Deployment")[deployment]["spec"]["template"]["metadata"]["labels"]


def test_every_referenced_secret_configmap_claim_and_selector_exists():
    secrets, configmaps = k8s_objects("Secret"), k8s_objects("ConfigMap")
    claims = k8s_objects("PersistentVolumeClaim")
    for name, deployment in k8s_objects("Deployment").items():
        assert deployment["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        spec = deployment["spec"]["template"]["spec"]
        for source in spec["containers"][0].get("envFrom", []):
            ref = source.get("configMapRef") or source.get("secretRef")
            assert ref["name"] in (configmaps if "configMapRef" in source else secrets), (name, ref)
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                secret = secrets[volume["secret"]["secretName"]]
                assert {item["key"] for item in volume["secret"]["items"]} <= set(secret["stringData"]), (name, volume)
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims
        mounted = {mount["name"] for mount in spec["containers"][0].get("volumeMounts", [])}
        assert mounted == {volume["name"] for volume in spec.get("volumes", [])}, name
    labels = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in k8s_objects("Deployment").items()}
    for name, budget in k8s_objects("PodDisruptionBudget").items():
        selected = [d for d, lab in labels.items() if budget["spec"]["selector"]["matchLabels"].items() <= lab.items()]
        assert selected, f"PodDisruptionBudget {name} selects no Deployment"
    for name, service in k8s_objects("Service").items():
        assert any(service["spec"]["selector"].items() <= lab.items() for lab in labels.values()), name


def k8s_env(tmp_path: Path, keys: Path, deployment: str) -> dict[str, str]:
    """The environment of a Deployment's pod with its mounts (keys from a real keys folder, a users file, /data)
    mapped to this test's folders."""
    spec = pod_spec(deployment)
    users = tmp_path / "users.txt"
    users.write_text("alice:secret-pw\n")
    keys_volume = next(v for v in spec.get("volumes", []) if v["name"] == "keys")
    mounted = mounted_secret(tmp_path, keys, keys_volume, deployment)
    return remap(container_env(spec), {"/keys": mounted, "/config/users.txt": users, "/data": tmp_path / "data"})


def test_each_k8s_role_builds_its_settings_from_its_env_and_mounted_keys(tmp_path, keys):
    def env_for(deployment: str) -> dict[str, str]:
        return k8s_env(tmp_path, keys, deployment)

    for name in ("warmserve-broker-a", "warmserve-broker-b"):
        broker = build_settings(BrokerSettings, environ=env_for(name))
        assert broker.keys_dir is not None and broker.frontend.startswith("tcp://0.0.0.0")
    worker = build_settings(ServerSettings, environ=env_for("warmserve-worker"))
    assert worker.connect_addresses == ("tcp://warmserve-broker-a:5577", "tcp://warmserve-broker-b:5577")
    assert worker.keys_dir is not None and worker.metrics_port == 9105
    for deployment in ("warmserve-dashboard", "warmserve-jobs-worker"):
        settings = dashboard_settings.settings_from(environ=env_for(deployment))
        assert settings.backend == "tcp://warmserve-broker-a:5576,tcp://warmserve-broker-b:5576"
        assert settings.keys_dir is not None
        client = build_settings(backend_settings.ClientSettings, environ=env_for(deployment))  # the CLI in the pod
        assert client.addresses == settings.client_settings().addresses and client.keys_dir is not None
        assert settings.auth_enabled and settings.redis and settings.secret_key


def test_k8s_commands_are_real_subcommands():
    for name, deployment in k8s_objects("Deployment").items():
        parse_command(deployment["spec"]["template"]["spec"]["containers"][0]["command"])


# -- compose -------------------------------------------------------------------------------------


def compose_schema() -> dict:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    assert vendor.joinpath("licenses", "LICENSE.compose-spec").is_file()
    return json.loads(vendor.joinpath("compose-spec.json").read_text())


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_matches_the_compose_spec_schema(path):
    jsonschema.validate(compose(path), compose_schema())


def test_compose_schema_check_catches_a_misspelt_key():
    broken = compose()
    broken["services"]["broker-a"]["restart_policy"] = "always"  # compose's key is `restart`
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, compose_schema())


def warmserve_services() -> dict[str, dict]:
    return {name: s for name, s in compose()["services"].items() if "warmserve" in interpolate(s["image"], env_example())}


def test_compose_runs_every_role_with_real_commands():
    commands = {}
    for name, service in warmserve_services().items():
        if name == "keys":
            command = shlex.split(service["command"][2].split("||", 1)[1])
        else:
            command = service["command"]
        args = parse_command(command)
        commands[name] = (python_module_command(command)[0], args.command)
    assert sorted(commands.values()) == sorted([
        ("dashboard", "jobs-worker"), ("dashboard", "serve"), ("dashboard", "serve"), ("model_backend", "broker"),
        ("model_backend", "broker"), ("model_backend", "keys"), ("model_backend", "serve"), ("model_backend", "serve")])
    services = compose()["services"]
    assert {"postgres", "redis", "lb"} <= set(services)
    for name, service in services.items():
        if name != "keys":
            assert service["restart"] == "unless-stopped", name
            assert "healthcheck" in service, name


def test_each_compose_role_builds_its_settings(tmp_path, keys):
    """The environment compose gives each role (deploy/env.example filled in) is one its settings accept."""
    users = tmp_path / "users.txt"
    users.write_text("alice:secret-pw\n")
    mounts = {"/keys": keys, "/config/users.txt": users, "/data": tmp_path / "data"}
    variables = env_example()
    services = warmserve_services()

    def env_of(name: str) -> dict[str, str]:
        return remap({k: interpolate(str(v), variables) for k, v in services[name]["environment"].items()}, mounts)

    for broker in ("broker-a", "broker-b"):
        assert build_settings(BrokerSettings, environ=env_of(broker)).backend == "tcp://0.0.0.0:5577"
    for worker in ("worker-1", "worker-2"):
        connect = build_settings(ServerSettings, environ=env_of(worker)).connect_addresses
        assert connect == ("tcp://broker-a:5577", "tcp://broker-b:5577")
    for name in ("dashboard-1", "dashboard-2", "jobs-worker"):
        settings = dashboard_settings.settings_from(environ=env_of(name))
        assert settings.redis == "redis://redis:6379/0" and settings.auth_enabled
        assert any(str(value).startswith("postgresql+psycopg://warmserve:") for value in vars(settings).values())
    # the probe user the health check logs in as is one the dashboard accepts
    assert load_healthcheck().probe_credentials(env_of("dashboard-1")["WARMSERVE_DASH_USERS"]) == \
        "probe:" + variables["PROBE_PASSWORD"]


def test_compose_has_no_single_broker_every_worker_connects_to_each_and_every_client_lists_each(tmp_path, keys):
    services = warmserve_services()
    brokers = sorted(name for name, s in services.items() if s["command"][1:] == ["-m", "model_backend", "broker"])
    assert len(brokers) >= 2
    frontends, backends = {f"tcp://{b}:5576" for b in brokers}, {f"tcp://{b}:5577" for b in brokers}
    variables = env_example()
    mounts = {"/keys": keys, "/config/users.txt": tmp_path / "users.txt", "/data": tmp_path / "data"}
    (tmp_path / "users.txt").write_text("alice:pw\n")
    first_choices = set()
    for name, service in services.items():
        if name == "keys":
            continue
        env = remap({k: interpolate(str(v), variables) for k, v in service["environment"].items()}, mounts)
        role = parse_command(service["command"]).command
        if role == "broker":
            continue
        assert set(brokers) <= set(service["depends_on"]), name
        if python_module_command(service["command"])[0] == "model_backend":  # a model worker
            assert set(build_settings(ServerSettings, environ=env).connect_addresses) == backends, name
            continue
        addresses = dashboard_settings.settings_from(environ=env).client_settings().addresses
        assert set(addresses) == frontends, name
        assert set(build_settings(backend_settings.ClientSettings, environ=env).addresses) == frontends, name  # the CLI
        if role == "serve":
            first_choices.add(addresses[0])
    assert first_choices == frontends, "the dashboards start at different brokers, so each routes a share"


def test_nginx_balances_both_dashboard_replicas_and_keeps_host():
    conf = (DEPLOY / "nginx.conf").read_text()
    replicas = [name for name in compose()["services"] if name.startswith("dashboard-")]
    for name in replicas:
        assert re.search(rf"server {name}:8050\b", conf), name
    assert "proxy_set_header Host $http_host;" in conf  # the dashboards check Host and Origin against it


# -- every WARMSERVE_* name is one the code reads ----------------------------------------------------


def test_hand_read_variables_are_read():
    settings = dashboard_settings.settings_from(environ={"WARMSERVE_DASH_USERS": "probe:pw"})
    assert [user.name for user in settings.users] == ["probe"]
    with pytest.raises(dashboard_settings.SettingsError, match="auth file"):
        dashboard_settings.settings_from(environ={"WARMSERVE_DASH_AUTH_FILE": "/nonexistent/users.txt"})


@pytest.mark.parametrize("path", [REPO / "Dockerfile", *COMPOSE_FILES, DEPLOY / "healthcheck.py", *sorted(K8S.rglob("*.yaml"))],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_every_warmserve_variable_in_deploy_is_read_by_the_settings(path):
    used = set(ENV_NAME.findall(path.read_text()))
    unknown = used - known_env_names()
    assert not unknown, f"{path.name} sets variables no setting reads: {sorted(unknown)}"


# -- Dockerfile ------------------------------------------------------------------------------------


def dockerfile() -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO((REPO / "Dockerfile").read_bytes()))


def stages() -> dict[str, list[dict]]:
    """Instructions per stage name (FROM ... AS NAME), in order."""
    result: dict[str, list[dict]] = {}
    current: list[dict] = []
    for instruction in dockerfile().structure:
        if instruction["instruction"] == "FROM":
            current = result.setdefault(instruction["value"].split()[-1], [])
        current.append(instruction)
    return result


def values(stage: list[dict], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def test_dockerfile_runs_as_a_numeric_non_root_user_and_stops_on_sigterm():
    runtime = stages()["runtime"]
    users = values(runtime, "USER")
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    assert values(runtime, "STOPSIGNAL") == ["SIGTERM"]
    assert json.loads(values(runtime, "ENTRYPOINT")[-1]) == ["/usr/bin/tini", "--"]
    parse_command(json.loads(values(runtime, "CMD")[-1]))
    # the default role must not need a volume: the cache it reads is in the image
    assert "WARMSERVE_CACHE_DIR=/opt/warmserve/cache" in values(stages()["base"], "ENV")[0]


def test_dockerfile_has_a_cpu_and_a_gpu_variant():
    all_stages = stages()
    assert values(all_stages["runtime"], "FROM") == ["deps-${VARIANT} AS runtime"]
    assert "VARIANT=cpu" in [i["value"] for i in dockerfile().structure if i["instruction"] == "ARG"]
    assert any("tensorflow[and-cuda]" in run for run in values(all_stages["deps-gpu"], "RUN"))
    assert any("pip install -e ." in run for run in values(all_stages["deps-cpu"], "RUN"))


def test_dockerfile_copies_files_that_exist_and_pass_dockerignore():
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]

    def sent(path: str) -> bool:  # .dockerignore: the last matching pattern wins
        keep = True
        for pattern in patterns:
            negated = pattern.startswith("!")
            if fnmatch.fnmatch(path, pattern.lstrip("!").rstrip("/")):
                keep = negated
        return keep

    copies = [value.split() for value in values(stages()["base"], "COPY")]
    assert copies
    for *sources, _target in copies:
        for source in sources:
            assert (REPO / source).exists(), source
            assert sent(source), f"{source} is excluded by .dockerignore"
    assert not sent(".venv") and not sent("data") and not sent("tests")


def test_dockerfile_fills_the_model_cache_with_functions_that_exist():
    run = next(r for r in values(stages()["runtime"], "RUN") if "load_classifier" in r)
    for module, name in re.findall(r"from ([\w.]+) import (\w+)", run):
        source = (REPO / (module.replace(".", "/") + ".py")).read_text()
        assert re.search(rf"^(def|class) {name}\b", source, re.M), f"{module}.{name}"


# -- the health check script ---------------------------------------------------------------------


def load_healthcheck():
    spec = importlib.util.spec_from_file_location("deploy_healthcheck", DEPLOY / "healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_probe_credentials_take_the_first_plain_user():
    healthcheck = load_healthcheck()
    assert healthcheck.probe_credentials("") is None
    assert healthcheck.probe_credentials("alice:admin:scrypt:32768:8:1$salt$hash, probe:pw,bob:x") == "probe:pw"


def test_ready_needs_200_and_live_accepts_any_answer_of_a_working_server():
    healthcheck = load_healthcheck()
    assert [s for s in (200, 401, 500, 503) if healthcheck.healthy("ready", s)] == [200]
    assert [s for s in (200, 401, 500, 503) if healthcheck.healthy("live", s)] == [200, 401, 503]
