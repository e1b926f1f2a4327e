# Smart Safety Zone platform on Kubernetes: KubeRay operator, a RayService (camera shards on CPU workers,
# face/plate Serve apps on the GPU node pool, the role-checked API) and a distributed MinIO with the
# twin (versioned), evidence (object lock, COMPLIANCE retention) and models buckets. Nothing is exposed
# outside the cluster: every Service is ClusterIP, NetworkPolicies (security.tf) admit only the platform's
# own pods, and Ray runs with RAY_AUTH_MODE=token on every pod; put your ingress / VPN in front of the API
# deliberately (api_ingress_namespaces).
#
# Identities: the MinIO root user (ssz-s3-admin) is used by MinIO itself and by the one-off ssz-store-init
# job only, which creates the buckets and sets the evidence retention (never lowered). Every Ray pod gets the
# least-privilege platform user (ssz-s3, policy ssz-platform: no bypass-governance, no lock or versioning
# changes, no deletes in the evidence bucket).
#
# Apply in two steps (the RayService CRD comes with the operator):
#   terraform apply -target=helm_release.kuberay_operator
#   terraform apply
# Then issue the first admin token inside the cluster (the head pod has the store and key secrets):
#   kubectl -n ssz exec <ssz head pod> -- ssz api token --user admin --role admin

locals {
  labels = {
    "app.kubernetes.io/part-of" = "smart-safety-zone"
    "ssz/city"                  = var.city
  }
  s3_endpoint = "minio.${var.namespace}.svc.cluster.local:9000"
  # What every Ray pod gets: the platform user (never the MinIO root), the audit and API-token keys, and
  # Ray's token authentication.
  common_env = [
    { name = "SSZ_S3_ENDPOINT", value = local.s3_endpoint },
    { name = "SSZ_S3_ACCESS_KEY", valueFrom = { secretKeyRef = { name = "ssz-s3", key = "access_key" } } },
    { name = "SSZ_S3_SECRET_KEY", valueFrom = { secretKeyRef = { name = "ssz-s3", key = "secret_key" } } },
    { name = "SSZ_AUDIT_KEY", valueFrom = { secretKeyRef = { name = "ssz-keys", key = "audit_key" } } },
    { name = "SSZ_API_TOKEN_KEY", valueFrom = { secretKeyRef = { name = "ssz-keys", key = "api_token_key" } } },
    { name = "SSZ_EVIDENCE_RETENTION_DAYS", value = tostring(var.evidence_retention_days) },
    { name = "RAY_AUTH_MODE", value = "token" },
    { name = "RAY_AUTH_TOKEN", valueFrom = { secretKeyRef = { name = "ssz-ray", key = "auth_token" } } },
    { name = "SSZ_CITY", value = var.city },
    { name = "RAY_USAGE_STATS_ENABLED", value = "0" },
  ]
  # The platform user's MinIO policy: read, list and write objects; delete only in twin (snapshot retention)
  # and models (old watchlist versions, so removed embeddings do not linger). Not granted, so refused:
  # s3:BypassGovernanceRetention, s3:PutBucketObjectLockConfiguration, s3:PutObjectRetention,
  # s3:PutBucketVersioning, s3:CreateBucket, s3:DeleteBucket, s3:PutBucketPolicy, any delete in evidence.
  # Not enforceable by this policy: "create only" in evidence. s3:PutObject lets this user put a newer version
  # over an evidence key, which hides the locked original from a plain GET. AWS would take a Deny on
  # {"Null": {"s3:if-none-match": "true"}}; MinIO's policy language has no s3:if-none-match condition key
  # (minio/pkg policy/condition refuses the policy as invalid). So the platform writes evidence with
  # If-None-Match: * (MinIO answers 412 over an existing key), serves the first version, and
  # `ssz audit evidence` lists every key written twice (twin/evidence.py).
  platform_policy = [
    {
      resources = ["arn:aws:s3:::twin", "arn:aws:s3:::evidence", "arn:aws:s3:::models"]
      actions = ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation", "s3:GetBucketVersioning",
      "s3:GetBucketObjectLockConfiguration"]
    },
    {
      resources = ["arn:aws:s3:::twin/*", "arn:aws:s3:::evidence/*", "arn:aws:s3:::models/*"]
      actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:GetObjectRetention"]
    },
    {
      resources = ["arn:aws:s3:::twin/*", "arn:aws:s3:::models/*"]
      actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
    },
  ]
  gpu_tolerations = [for t in var.gpu_tolerations : { for k, v in t : k => v if v != null }]
}

resource "kubernetes_namespace" "ssz" {
  metadata {
    name   = var.namespace
    labels = local.labels
  }
}

resource "kubernetes_secret" "s3_admin" {
  metadata {
    name      = "ssz-s3-admin"
    namespace = kubernetes_namespace.ssz.metadata[0].name
  }
  data = {
    rootUser     = var.s3_admin_access_key
    rootPassword = var.s3_admin_secret_key
  }
}

resource "kubernetes_secret" "s3" {
  metadata {
    name      = "ssz-s3"
    namespace = kubernetes_namespace.ssz.metadata[0].name
  }
  data = {
    access_key = var.s3_access_key
    secret_key = var.s3_secret_key
  }
}

resource "kubernetes_secret" "keys" {
  metadata {
    name      = "ssz-keys"
    namespace = kubernetes_namespace.ssz.metadata[0].name
  }
  data = {
    audit_key     = var.audit_key
    api_token_key = var.api_token_key
  }
}

resource "kubernetes_secret" "ray" {
  metadata {
    name      = "ssz-ray"
    namespace = kubernetes_namespace.ssz.metadata[0].name
  }
  data = {
    auth_token = var.ray_auth_token
  }
}

resource "helm_release" "kuberay_operator" {
  name       = "kuberay-operator"
  repository = "https://ray-project.github.io/kuberay-helm/"
  chart      = "kuberay-operator"
  version    = var.kuberay_chart_version
  namespace  = kubernetes_namespace.ssz.metadata[0].name
}

resource "helm_release" "minio" {
  name       = "minio"
  repository = "https://charts.min.io/"
  chart      = "minio"
  version    = var.minio_chart_version
  namespace  = kubernetes_namespace.ssz.metadata[0].name
  values = [yamlencode({
    mode           = "distributed"
    replicas       = var.minio_replicas
    existingSecret = kubernetes_secret.s3_admin.metadata[0].name
    persistence    = { size = var.minio_volume_size }
    podLabels      = local.labels
    policies       = [{ name = "ssz-platform", statements = local.platform_policy }]
    users = [{
      accessKey         = var.s3_access_key
      existingSecret    = kubernetes_secret.s3.metadata[0].name
      existingSecretKey = "secret_key"
      policy            = "ssz-platform"
    }]
    service        = { type = "ClusterIP", port = 9000 }
    consoleService = { type = "ClusterIP" }
    buckets = [
      { name = "twin", policy = "none", purge = false, versioning = true, objectlocking = false },
      { name = "evidence", policy = "none", purge = false, versioning = true, objectlocking = true },
      { name = "models", policy = "none", purge = false, versioning = false, objectlocking = false },
    ]
  })]
}

resource "kubernetes_manifest" "ray_service" {
  depends_on = [helm_release.kuberay_operator, helm_release.minio, kubernetes_job.store_init]
  manifest = {
    apiVersion = "ray.io/v1"
    kind       = "RayService"
    metadata = {
      name      = "ssz"
      namespace = kubernetes_namespace.ssz.metadata[0].name
      labels    = local.labels
    }
    spec = {
      serveConfigV2 = yamlencode({
        # Inside the pod the proxy listens on the pod network; the Service in front of it is ClusterIP.
        http_options = { host = "0.0.0.0", port = 8000 }
        applications = [{
          name         = "ssz"
          route_prefix = "/"
          import_path  = "cluster.serving:app_builder"
          args         = { max_batch_size = "16", num_gpus = tostring(var.gpu_workers.gpus) }
        }]
      })
      rayClusterConfig = {
        rayVersion = "2.60.0"
        headGroupSpec = {
          rayStartParams = { "dashboard-host" = "127.0.0.1", "num-cpus" = "0" }
          template = {
            metadata = { labels = local.labels }
            spec = {
              containers = [{
                name      = "ray-head"
                image     = var.ray_image
                env       = local.common_env
                resources = { limits = { cpu = "4", memory = "8Gi" }, requests = { cpu = "2", memory = "8Gi" } }
              }]
            }
          }
        }
        workerGroupSpecs = [
          {
            groupName      = "shards-cpu"
            replicas       = var.cpu_workers.replicas
            minReplicas    = var.cpu_workers.min
            maxReplicas    = var.cpu_workers.max
            rayStartParams = {}
            template = {
              metadata = { labels = local.labels }
              spec = {
                containers = [{
                  name  = "ray-worker"
                  image = var.ray_image
                  env   = local.common_env
                  resources = {
                    limits   = { cpu = var.cpu_workers.cpu, memory = var.cpu_workers.memory }
                    requests = { cpu = var.cpu_workers.cpu, memory = var.cpu_workers.memory }
                  }
                }]
              }
            }
          },
          {
            groupName      = "serve-gpu"
            replicas       = var.gpu_workers.replicas
            minReplicas    = var.gpu_workers.min
            maxReplicas    = var.gpu_workers.max
            rayStartParams = { "num-gpus" = tostring(var.gpu_workers.gpus) }
            template = {
              metadata = { labels = local.labels }
              spec = {
                nodeSelector = var.gpu_node_selector
                tolerations  = local.gpu_tolerations
                containers = [{
                  name  = "ray-worker"
                  image = var.ray_image
                  env   = local.common_env
                  resources = {
                    limits   = { cpu = var.gpu_workers.cpu, memory = var.gpu_workers.memory, "nvidia.com/gpu" = tostring(var.gpu_workers.gpus) }
                    requests = { cpu = var.gpu_workers.cpu, memory = var.gpu_workers.memory, "nvidia.com/gpu" = tostring(var.gpu_workers.gpus) }
                  }
                }]
              }
            }
          },
        ]
      }
    }
  }
}
