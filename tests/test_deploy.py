"""The deployment files: the Dockerfile's shape, compose.yaml's services and order, and the Helm chart's manifests
checked against the Kubernetes schemas (kubernetes-validate, offline).

The chart's rendering for deploy/helm/values-example.yaml is committed (deploy/helm/rendered-example.yaml) and
validated on every run; where a `helm` binary is found (PATH, or NEXTSLOT_HELM), the chart is rendered again and
must give the same manifests, so the committed rendering cannot drift from the templates, and `helm lint` must
pass. Building the image needs a container engine and a base image: not part of the suite (README: Deployment).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy/helm/nextslot"
RENDERED = ROOT / "deploy/helm/rendered-example.yaml"
EXAMPLE_VALUES = ROOT / "deploy/helm/values-example.yaml"


def manifests() -> list[dict]:
    return [doc for doc in yaml.safe_load_all(RENDERED.read_text()) if doc]


def of_kind(kind: str) -> list[dict]:
    return [m for m in manifests() if m["kind"] == kind]


def helm() -> str | None:
    return os.environ.get("NEXTSLOT_HELM") or shutil.which("helm")


def test_the_dockerfile_builds_in_two_stages_and_runs_nextslot_as_a_non_root_user():
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) == 2 and "COPY --from=build /opt/nextslot /opt/nextslot" in text
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert 'ENTRYPOINT ["nextslot"]' in text and re.search(r'^CMD \["serve"', text, re.M)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".nextslot", ".git", "tests"} <= set(ignored)  # no local database or secret key in the image


def test_compose_runs_postgres_then_the_migrations_once_then_a_server_and_a_scheduler():
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert set(services) == {"postgres", "migrate", "server", "scheduler"}
    assert services["migrate"]["command"] == ["migrate"] and services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("server", "scheduler"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
        env = services[name]["environment"]
        assert env["NEXTSLOT_DATABASE_URL"].startswith("postgresql+psycopg://") and "NEXTSLOT_SECRET_KEY" in env
    assert services["server"]["command"][0] == "serve" and services["scheduler"]["command"] == ["scheduler"]
    assert "/ready" in " ".join(services["server"]["healthcheck"]["test"])
    assert services["scheduler"]["environment"]["NEXTSLOT_METRICS_PORT"] == "9100"


def test_the_rendered_chart_passes_the_kubernetes_schemas_strictly():
    import kubernetes_validate

    for manifest in manifests():
        kubernetes_validate.validate(manifest, "1.31.0", strict=True)  # raises on any unknown or wrong field
    assert {m["kind"] for m in manifests()} == {"Secret", "ConfigMap", "Service", "Deployment",
                                                 "HorizontalPodAutoscaler", "Job"}


def test_the_chart_has_a_server_with_health_and_readiness_a_scheduler_a_migration_job_and_an_hpa():
    deployments = {d["metadata"]["name"]: d for d in of_kind("Deployment")}
    server = deployments["nextslot-server"]["spec"]["template"]["spec"]
    [container] = server["containers"]
    assert container["args"][0] == "serve"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert server["securityContext"]["runAsNonRoot"] is True and container["securityContext"]["readOnlyRootFilesystem"]
    scheduler = deployments["nextslot-scheduler"]["spec"]["template"]["spec"]["containers"][0]
    assert scheduler["args"] == ["scheduler"]
    for c in (container, scheduler):
        assert {ref.get("secretRef", ref.get("configMapRef"))["name"] for ref in c["envFrom"]} == {"nextslot"}
    [job] = of_kind("Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    [hpa] = of_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "nextslot-server"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "replicas" not in deployments["nextslot-server"]["spec"]  # the HPA owns the count
    secrets = {s["metadata"]["name"]: s for s in of_kind("Secret")}
    assert set(secrets["nextslot"]["stringData"]) == {"NEXTSLOT_DATABASE_URL", "NEXTSLOT_SECRET_KEY",
                                                       "NEXTSLOT_METRICS_TOKEN"}
    [config] = of_kind("ConfigMap")
    assert not any("SECRET" in k or "PASSWORD" in k for k in config["data"])  # secrets stay in Secrets


@pytest.mark.skipif(not helm(), reason="no helm binary (PATH or NEXTSLOT_HELM); the committed rendering is checked")
def test_the_chart_lints_and_renders_as_committed_and_refuses_missing_settings():
    lint = subprocess.run([helm(), "lint", str(CHART), "-f", str(EXAMPLE_VALUES)], capture_output=True, text=True,
                          timeout=120)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    rendered = subprocess.run([helm(), "template", "nextslot", str(CHART), "-f", str(EXAMPLE_VALUES)],
                              capture_output=True, text=True, timeout=120)
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout == RENDERED.read_text(), "re-render deploy/helm/rendered-example.yaml (see its test)"
    missing = subprocess.run([helm(), "template", "nextslot", str(CHART)], capture_output=True, text=True,
                             timeout=120)
    assert missing.returncode != 0 and "database.url (or existingSecret) is required" in missing.stderr
