# Smart Safety Zone platform on Kubernetes: KubeRay operator, a RayService (camera shards on CPU workers,
# face/plate Serve apps on the GPU node pool, the token-protected API) and a distributed MinIO with the
# twin (versioned), evidence (object lock) and models buckets. Nothing is exposed outside the cluster:
# every Service is ClusterIP; put your ingress / VPN in front of the API deliberately.
#
# Apply in two steps (the RayService CRD comes with the operator):
#   terraform apply -target=helm_release.kuberay_operator
#   terraform apply

locals {
  labels = {
    "app.kubernetes.io/part-of" = "smart-safety-zone"
    "ssz/city"                  = var.city
  }
  s3_endpoint = "minio.${var.namespace}.svc.cluster.local:9000"
  common_env = [
    { name = "SSZ_S3_ENDPOINT", value = local.s3_endpoint },
    { name = "SSZ_S3_ACCESS_KEY", valueFrom = { secretKeyRef = { name = "ssz-s3", key = "access_key" } } },
    { name = "SSZ_S3_SECRET_KEY", valueFrom = { secretKeyRef = { name = "ssz-s3", key = "secret_key" } } },
    { name = "SSZ_API_TOKENS", valueFrom = { secretKeyRef = { name = "ssz-api", key = "tokens" } } },
    { name = "SSZ_CITY", value = var.city },
    { name = "RAY_USAGE_STATS_ENABLED", value = "0" },
  ]
  gpu_tolerations = [for t in var.gpu_tolerations : { for k, v in t : k => v if v != null }]
}

resource "kubernetes_namespace" "ssz" {
  metadata {
    name   = var.namespace
    labels = local.labels
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

resource "kubernetes_secret" "api" {
  metadata {
    name      = "ssz-api"
    namespace = kubernetes_namespace.ssz.metadata[0].name
  }
  data = {
    tokens = var.api_tokens
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
    existingSecret = kubernetes_secret.s3.metadata[0].name
    persistence    = { size = var.minio_volume_size }
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
  depends_on = [helm_release.kuberay_operator, helm_release.minio]
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
