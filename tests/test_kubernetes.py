"""`scoring-server generate-k8s`: the manifests are valid Kubernetes objects (checked against the schemas of a
current release, shipped by kubernetes-validate: no cluster, no network), and their probes, ports, environment
and grace period match what a real server started with that environment answers."""
from __future__ import annotations

import math
import time

import pytest
import yaml

from scoring_server.deploy import kubernetes as k8s

from .conftest import FIXTURES, REPO, RunningServer, constant_model, stop_process
from .test_cli import run_cli

try:
    import kubernetes_validate
except ImportError:  # fail, never skip: the schemas are the point of these tests
    kubernetes_validate = None

IRIS = FIXTURES / "iris"
VARIANTS = {
    "defaults": k8s.Settings(name="iris", image="registry.example/iris:1"),
    "service-monitor": k8s.Settings(name="iris", image="registry.example/iris:1", namespace="ml", replicas=3,
                                    max_replicas=12, cpu_millis=2500, threads=4, service_monitor=True),
    "half-cpu": k8s.Settings(name="iris", image="registry.example/iris:1", cpu_millis=500, drain_seconds=2),
}


@pytest.fixture(scope="module")
def memory() -> k8s.ModelMemory:
    return k8s.measure_memory(str(IRIS))


def by_kind(documents: list[dict]) -> dict[str, dict]:
    return {document["kind"]: document for document in documents}


def validate(document: dict) -> None:
    assert kubernetes_validate is not None, "kubernetes-validate is missing: pip install -e '.[test]'"
    kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_manifest_is_valid_for_a_current_kubernetes(variant, memory):
    documents = k8s.manifests(VARIANTS[variant], memory)
    kinds = [document["kind"] for document in documents]
    assert kinds[:4] == ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"]
    for document in documents:
        if document["kind"] != "ServiceMonitor":  # a CRD: no schema in Kubernetes' own; its shape is checked below
            validate(document)


def test_schema_validation_refuses_a_wrong_manifest(memory):
    """The validation can fail: a misspelled probe field and a string replica count are refused."""
    deployment = by_kind(k8s.manifests(VARIANTS["defaults"], memory))["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSecond"] = 5
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    service = by_kind(k8s.manifests(VARIANTS["defaults"], memory))["Service"]
    service["spec"]["ports"][0]["port"] = "eighty"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(service)


def test_selectors_ports_and_scaling_agree(memory):
    settings = VARIANTS["service-monitor"]
    manifests = by_kind(k8s.manifests(settings, memory))
    deployment, service = manifests["Deployment"], manifests["Service"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (deployment["spec"]["selector"]["matchLabels"], service["spec"]["selector"],
                     manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= pod_labels.items()
    assert all(document["metadata"]["namespace"] == "ml" for document in manifests.values())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert [port["name"] for port in container["ports"]] == ["http"]
    autoscaler = manifests["HorizontalPodAutoscaler"]["spec"]
    assert autoscaler["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert (autoscaler["minReplicas"], autoscaler["maxReplicas"]) == (3, 12)
    assert container["resources"]["requests"]["cpu"] == container["resources"]["limits"]["cpu"] == "2500m"
    assert environment(container, cpu_limit=2.5)["SCORING_SERVER_THREADS"] == "4"


def test_the_service_monitor_scrapes_the_service_instead_of_annotations(memory):
    monitor_variant = by_kind(k8s.manifests(VARIANTS["service-monitor"], memory))
    monitor, service = monitor_variant["ServiceMonitor"], monitor_variant["Service"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ml"]}
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    assert "annotations" not in monitor_variant["Deployment"]["spec"]["template"]["metadata"]
    annotated = by_kind(k8s.manifests(VARIANTS["defaults"], memory))["Deployment"]["spec"]["template"]["metadata"]
    assert annotated["annotations"] == {"prometheus.io/scrape": "true", "prometheus.io/port": "8080",
                                        "prometheus.io/path": "/metrics"}


def test_pods_run_as_non_root_on_a_read_only_filesystem_writing_only_tmp(memory):
    pod = by_kind(k8s.manifests(VARIANTS["defaults"], memory))["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == k8s.IMAGE_UID
    assert container["securityContext"] == {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                            "capabilities": {"drop": ["ALL"]}}
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"][0]["name"] == "tmp" and "emptyDir" in pod["volumes"][0]
    assert environment(container, cpu_limit=1)["TMPDIR"] == "/tmp"


def test_memory_is_measured_from_the_model(memory, tmp_path):
    """The same model holding 96 MiB more weights is measured (and requested) about 96 MiB larger."""
    small = k8s.measure_memory(str(constant_model(tmp_path / "small", 1.0)))
    big = k8s.measure_memory(str(constant_model(tmp_path / "big", 1.0, ballast_bytes=96 * 2**20)))
    assert memory.server_mib > 20 and memory.model_mib > 0
    assert 90 <= big.model_mib - small.model_mib <= 130, (small, big)
    resources = by_kind(k8s.manifests(VARIANTS["service-monitor"], big))["Deployment"]["spec"]["template"][
        "spec"]["containers"][0]["resources"]
    request = big.server_mib + big.model_mib + 3 * k8s.WORKER_MIB  # 2.5 CPUs: 3 workers
    assert resources["requests"]["memory"] == f"{request}Mi"
    assert resources["limits"]["memory"] == f"{math.ceil(request * k8s.LIMIT_FACTOR)}Mi"


def environment(container: dict, cpu_limit: float) -> dict[str, str]:
    """The container's variables as the kubelet sets them: a ``limits.cpu`` reference with divisor 1 is the
    limit rounded up to whole CPUs."""
    values = {}
    for variable in container["env"]:
        if "value" in variable:
            values[variable["name"]] = variable["value"]
        else:
            reference = variable["valueFrom"]["resourceFieldRef"]
            assert (reference["containerName"], reference["resource"], reference["divisor"]) == (
                container["name"], "limits.cpu", "1")
            values[variable["name"]] = str(math.ceil(cpu_limit))
    return values


def test_a_server_started_with_the_deployment_environment_answers_its_probes(memory, tmp_path):
    """The probes' paths on the container port, /metrics as Prometheus text, every write under TMPDIR, and
    a SIGTERM drain that ends within the grace period less the preStop pause."""
    settings = VARIANTS["half-cpu"]
    deployment = by_kind(k8s.manifests(settings, memory))["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = environment(container, cpu_limit=0.5)
    container_port = container["ports"][0]["containerPort"]
    assert env["SCORING_SERVER_WORKERS"] == "1"
    env["TMPDIR"] = str(tmp_path)  # standing in for the emptyDir
    # The image's flags (see the Dockerfile test) on loopback: the fixture for /opt/ml/model, a free port for 8080.
    server = RunningServer(IRIS, workers=int(env["SCORING_SERVER_WORKERS"]), env=env)
    try:
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["port"] == "http"
            assert server.get(container[probe]["httpGet"]["path"]).status_code == 200, probe
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(container_port)
        metrics = server.get(annotations["prometheus.io/path"])
        assert metrics.status_code == 200 and metrics.headers["Content-Type"].startswith("text/plain")
        assert "# TYPE scoring_server_" in metrics.text
        assert list(tmp_path.glob("scoring-server-metrics-*")), "the metrics directory is not under TMPDIR"
    finally:
        started = time.monotonic()
        stop_process(server.process)
        stopped_after = time.monotonic() - started
    assert server.process.poll() == 0, server.output()
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = int(env["SCORING_SERVER_DRAIN_SECONDS"])
    assert (drain, pre_stop) == (settings.drain_seconds, k8s.PRESTOP_SECONDS)
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + drain + 1
    assert stopped_after <= drain + 1 <= pod["terminationGracePeriodSeconds"] - pre_stop


def test_the_manifests_match_the_image_of_build_docker(memory):
    """The port and user the Deployment expects are those of the Dockerfile that generate-dockerfile writes."""
    dockerfile = (REPO / "scoring_server" / "deploy" / "templates" / "docker" / "Dockerfile").read_text()
    pod = by_kind(k8s.manifests(VARIANTS["defaults"], memory))["Deployment"]["spec"]["template"]["spec"]
    port = pod["containers"][0]["ports"][0]["containerPort"]
    user = pod["securityContext"]["runAsUser"]
    assert f"\nEXPOSE {port}\n" in dockerfile and f'"-p", "{port}"]' in dockerfile
    assert f"\nUSER {user}:{user}\n" in dockerfile


def test_generate_k8s_writes_one_file_per_manifest(tmp_path):
    result = run_cli("generate-k8s", "-m", str(IRIS), "--image", "registry.example/iris:1", "--service-monitor",
                     "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["deployment.yaml", "horizontalpodautoscaler.yaml", "poddisruptionbudget.yaml",
                     "service.yaml", "servicemonitor.yaml"]
    deployment = yaml.safe_load((tmp_path / "deployment.yaml").read_text())
    assert deployment["metadata"]["name"] == "iris"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/iris:1"


def test_generate_k8s_prints_every_manifest(tmp_path):
    result = run_cli("generate-k8s", "-m", str(IRIS), "--image", "i:1", "--name", "flowers", "--replicas", "1")
    assert result.returncode == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    assert [document["metadata"]["name"] for document in documents] == ["flowers"] * 4
    assert result.stdout.startswith("# Generated by scoring-server")


@pytest.mark.parametrize("args, message", [
    (["--cpu", "lots"], "--cpu 'lots': use a CPU quantity such as 2, 1.5 or 500m"),
    (["--name", "Iris_Model"], "'Iris_Model' is not a Kubernetes name"),
    (["--replicas", "4", "--max-replicas", "3"], "--max-replicas 3 is below --replicas 4"),
])
def test_generate_k8s_refuses_bad_settings_in_one_line(args, message):
    result = run_cli("generate-k8s", "-m", str(IRIS), "--image", "i:1", *args)
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: {message}") and len(result.stderr.splitlines()) == 1


def test_generate_k8s_says_why_a_model_cannot_be_measured(tmp_path):
    result = run_cli("generate-k8s", "-m", str(tmp_path / "missing"), "--image", "i:1")
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: cannot load {tmp_path / 'missing'} to measure its memory: ")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("uri, name", [("models:/Iris_Model/3", "iris-model"), ("models:/fraud@champion", "fraud"),
                                       (str(FIXTURES / "day_models"), "day-models"), ("/m/2024_model", "model-2024-model")])
def test_names_come_from_the_model(uri, name):
    assert k8s.default_name(uri) == name
