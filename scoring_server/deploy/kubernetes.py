"""Kubernetes manifests for one model's server (``scoring-server generate-k8s``).

The manifests encode what the server does: ``/ping`` is readiness (503 while loading and while
draining), ``/health`` is liveness (the process answers); SIGTERM drains for ``drain_seconds``, so
the pod's grace period covers a preStop pause (endpoints are removed before the drain starts) plus
the drain. Memory requests come from loading the model in a child process and measuring it, and
the worker count is the container's CPU limit, read by the server from its environment.
"""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .. import __version__
from ..config import ServerConfigSchema, env_var

#: What the image of ``build-docker`` (deploy/templates/docker/Dockerfile) serves on, and as whom.
CONTAINER_PORT = 8080
IMAGE_UID = 10001
DEFAULT_DRAIN_SECONDS: int = ServerConfigSchema().fields["drain_seconds"].load_default
#: Seconds a terminating pod keeps serving before SIGTERM, while Services and load balancers drop it.
PRESTOP_SECONDS = 5
#: Seconds past preStop + drain before the kubelet's SIGKILL: gunicorn's own exit (atexit, logs).
GRACE_MARGIN_SECONDS = 5
#: A worker's own memory under load (request bodies, decoded frames, predictions); the model itself
#: is shared with the master copy-on-write, so it is counted once.
WORKER_MIB = 64
#: The memory limit is this much above the request: room for bursts before the OOM killer.
LIMIT_FACTOR = 1.5
_PROBE_PERIOD = 5
_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?\Z")

# Run in a child process: the peak memory (KiB) of the serving modules, then of the model loaded on top.
# VmHWM is this program's own peak; ru_maxrss (its stand-in off Linux) may be the parent's, kept across exec.
_MEASURE = """
import json, resource, sys

def peak_kib():
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == "darwin" else 1)

import scoring_server.app, flavors
server = peak_kib()
flavors.load_model(sys.argv[1])
print(json.dumps({"server_kib": server, "model_kib": peak_kib() - server}))
"""


class KubernetesError(Exception):
    """A model or setting the manifests cannot be made from; the message says which."""


@dataclass(frozen=True)
class ModelMemory:
    """What one server of the model holds before any request, in MiB."""

    server_mib: int  # Python, Flask, gunicorn and the serving modules
    model_mib: int  # the model and the libraries it imports

    def request_mib(self, workers: int) -> int:
        return self.server_mib + self.model_mib + workers * WORKER_MIB


@dataclass(frozen=True)
class Settings:
    """What the user chose (``generate-k8s`` flags)."""

    name: str
    image: str
    namespace: str | None = None
    replicas: int = 2
    max_replicas: int = 6
    cpu_millis: int = 1000
    cpu_target_percent: int = 70
    drain_seconds: int = DEFAULT_DRAIN_SECONDS
    threads: int = 1
    service_monitor: bool = False

    def __post_init__(self) -> None:
        """Refused at once, before the model is loaded to be measured."""
        if self.max_replicas < self.replicas:
            raise KubernetesError(f"--max-replicas {self.max_replicas} is below --replicas {self.replicas}")

    @property
    def workers(self) -> int:
        """The worker count the server reads from its CPU limit (Kubernetes rounds it up to whole CPUs)."""
        return math.ceil(self.cpu_millis / 1000)

    @property
    def grace_seconds(self) -> int:
        return PRESTOP_SECONDS + self.drain_seconds + GRACE_MARGIN_SECONDS


def measure_memory(model_uri: str, timeout: float = 600) -> ModelMemory:
    """Load the model in a fresh interpreter and measure it: this process's own memory says nothing."""
    try:
        done = subprocess.run([sys.executable, "-c", _MEASURE, model_uri], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise KubernetesError(f"loading {model_uri} to measure its memory took over {timeout:g} s") from None
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit status {done.returncode}"
        raise KubernetesError(f"cannot load {model_uri} to measure its memory: {reason}")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    return ModelMemory(math.ceil(measured["server_kib"] / 1024), math.ceil(measured["model_kib"] / 1024))


def default_name(model_uri: str) -> str:
    """A DNS label from the model's directory or registered name (``models:/Iris_Model/3`` -> ``iris-model``)."""
    if model_uri.startswith("models:/"):
        base = re.split(r"[/@]", model_uri.removeprefix("models:/"))[0]
    else:
        base = Path(model_uri.removeprefix("file://")).resolve().name
    name = re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")[:63].rstrip("-")
    return name if _DNS_LABEL.match(name) else f"model-{name}"[:63].rstrip("-")


def check_name(name: str) -> str:
    """``name`` if Services accept it (an RFC 1035 label), else a :class:`KubernetesError` saying the rule."""
    if not _DNS_LABEL.match(name):
        raise KubernetesError(f"{name!r} is not a Kubernetes name: use at most 63 lower-case letters, digits "
                              "and '-', starting with a letter and ending with a letter or digit")
    return name


def parse_cpu(quantity: str) -> int:
    """A CPU quantity (``2``, ``1.5``, ``500m``) in millicores."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m?)", quantity.strip())
    millis = (float(match[1]) if match[2] else float(match[1]) * 1000) if match else 0
    if millis < 1:
        raise KubernetesError(f"--cpu {quantity!r}: use a CPU quantity such as 2, 1.5 or 500m")
    return math.ceil(millis)


def manifests(settings: Settings, memory: ModelMemory) -> list[dict[str, Any]]:
    """The Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget (and ServiceMonitor)."""
    documents = [_deployment(settings, memory), _service(settings), _autoscaler(settings),
                 _disruption_budget(settings)]
    return documents + ([_service_monitor(settings)] if settings.service_monitor else [])


def render(documents: list[dict[str, Any]], settings: Settings, memory: ModelMemory) -> str:
    """Multi-document YAML, headed by how the memory request was reached."""
    header = (f"# Generated by scoring-server {__version__} generate-k8s. Memory request: server {memory.server_mib} "
              f"MiB + model {memory.model_mib} MiB (measured) + {settings.workers} worker(s) x {WORKER_MIB} MiB.\n")
    return header + yaml.safe_dump_all(documents, sort_keys=False)


def write(documents: list[dict[str, Any]], settings: Settings, memory: ModelMemory, output: Path) -> list[Path]:
    """``output`` a directory: one file per manifest (``deployment.yaml``...); else one multi-document file."""
    if not output.is_dir():
        output.write_text(render(documents, settings, memory))
        return [output]
    paths = [output / f"{document['kind'].lower()}.yaml" for document in documents]
    for path, document in zip(paths, documents):
        path.write_text(render([document], settings, memory))
    return paths


def _labels(settings: Settings) -> dict[str, str]:
    """What selects the pods: stable over upgrades (a Deployment's selector cannot change)."""
    return {"app.kubernetes.io/name": "scoring-server", "app.kubernetes.io/instance": settings.name}


def _metadata(settings: Settings, **extra: Any) -> dict[str, Any]:
    labels = {**_labels(settings), "app.kubernetes.io/component": "model-server",
              "app.kubernetes.io/version": __version__, "app.kubernetes.io/managed-by": "scoring-server"}
    namespace = {"namespace": settings.namespace} if settings.namespace else {}
    return {"name": settings.name, **namespace, "labels": labels, **extra}


def _deployment(settings: Settings, memory: ModelMemory) -> dict[str, Any]:
    # Scraped by annotations, unless a ServiceMonitor does it (both would count every sample twice).
    scrape = {} if settings.service_monitor else {"annotations": {
        "prometheus.io/scrape": "true", "prometheus.io/port": str(CONTAINER_PORT), "prometheus.io/path": "/metrics"}}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(settings),
        "spec": {
            "replicas": settings.replicas,
            "selector": {"matchLabels": _labels(settings)},
            # A new pod is ready (its model loaded) before an old one goes: no capacity lost in a rollout.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": _metadata(settings)["labels"], **scrape},
                "spec": {
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": settings.grace_seconds,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": IMAGE_UID, "runAsGroup": IMAGE_UID,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [_container(settings, memory)],
                    # gunicorn's heartbeat files and the metrics directory: the only writes (TMPDIR).
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
                },
            },
        },
    }


def _container(settings: Settings, memory: ModelMemory) -> dict[str, Any]:
    request_mib = memory.request_mib(settings.workers)
    cpu = str(settings.cpu_millis // 1000) if settings.cpu_millis % 1000 == 0 else f"{settings.cpu_millis}m"
    return {
        "name": "server",
        "image": settings.image,
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "env": _environment(settings),
        "resources": {"requests": {"cpu": cpu, "memory": f"{request_mib}Mi"},
                      "limits": {"cpu": cpu, "memory": f"{math.ceil(request_mib * LIMIT_FACTOR)}Mi"}},
        # Not ready (503) while the model loads or the server drains; the kubelet then sends it nothing.
        "readinessProbe": _probe("/ping", period=_PROBE_PERIOD, failures=2),
        # Alive whenever the server answers, loading and draining included; restarted only after a
        # minute of failures (a worker stuck in C code until gunicorn replaces it is not a reason).
        "livenessProbe": _probe("/health", period=10, failures=6),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SECONDS}}},
        "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def _environment(settings: Settings) -> list[dict[str, Any]]:
    """The server's settings (docs/configuration.md; the image fixes the model, host and port): one worker per
    CPU of the limit, read at start; its temporary files on the writable volume."""
    workers = {"resourceFieldRef": {"containerName": "server", "resource": "limits.cpu", "divisor": "1"}}
    values = {env_var("threads"): str(settings.threads), env_var("drain_seconds"): str(settings.drain_seconds),
              "TMPDIR": "/tmp"}
    return ([{"name": env_var("workers"), "valueFrom": workers}]
            + [{"name": name, "value": value} for name, value in values.items()])


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "timeoutSeconds": 5,
            "failureThreshold": failures}


def _service(settings: Settings) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _metadata(settings),
            "spec": {"type": "ClusterIP", "selector": _labels(settings),
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}


def _autoscaler(settings: Settings) -> dict[str, Any]:
    target = {"type": "Utilization", "averageUtilization": settings.cpu_target_percent}
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": _metadata(settings),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": settings.name},
                     "minReplicas": settings.replicas, "maxReplicas": settings.max_replicas,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": target}}]}}


def _disruption_budget(settings: Settings) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _metadata(settings),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _labels(settings)}}}


def _service_monitor(settings: Settings) -> dict[str, Any]:
    """For the Prometheus Operator: scrape /metrics of every pod behind the Service's ``http`` port."""
    namespaces = {"namespaceSelector": {"matchNames": [settings.namespace]}} if settings.namespace else {}
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": _metadata(settings),
            "spec": {"selector": {"matchLabels": _labels(settings)}, **namespaces,
                     "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}]}}
