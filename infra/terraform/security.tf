# What keeps the evidence locked and the platform unreachable from outside (see main.tf for the identities):
#
# * ssz-store-init: a one-off job, the only user of the MinIO root identity besides MinIO itself. It runs
#   `ssz store up`, which creates any missing bucket and gives the evidence bucket COMPLIANCE retention of
#   var.evidence_retention_days, raising a shorter retention and never lowering a longer one.
# * NetworkPolicies: the platform's pods (Ray head and workers, MinIO) accept traffic only from each other
#   and from the KubeRay operator; the API port only from var.api_ingress_namespaces; their egress goes only
#   to each other, to DNS and to the camera networks. Ray's own listeners (GCS, raylets, the Serve replicas'
#   inter-deployment gRPC servers, which bind the pod IP) are therefore reachable from platform pods only,
#   and RAY_AUTH_MODE=token (main.tf) makes every Ray RPC carry the cluster token.

resource "kubernetes_job" "store_init" {
  depends_on = [helm_release.minio]
  metadata {
    name      = "ssz-store-init"
    namespace = kubernetes_namespace.ssz.metadata[0].name
    labels    = local.labels
  }
  spec {
    backoff_limit = 10
    template {
      metadata {
        labels = local.labels
      }
      spec {
        restart_policy = "OnFailure"
        container {
          name    = "store-init"
          image   = var.ray_image
          command = ["ssz", "store", "up", "--json"]
          env {
            name  = "SSZ_S3_ENDPOINT"
            value = local.s3_endpoint
          }
          env {
            name  = "SSZ_EVIDENCE_RETENTION_DAYS"
            value = tostring(var.evidence_retention_days)
          }
          dynamic "env" {
            # The platform user (to check the buckets afterwards) and the MinIO root (to create and lock them).
            for_each = {
              SSZ_S3_ACCESS_KEY       = [kubernetes_secret.s3.metadata[0].name, "access_key"]
              SSZ_S3_SECRET_KEY       = [kubernetes_secret.s3.metadata[0].name, "secret_key"]
              SSZ_S3_ADMIN_ACCESS_KEY = [kubernetes_secret.s3_admin.metadata[0].name, "rootUser"]
              SSZ_S3_ADMIN_SECRET_KEY = [kubernetes_secret.s3_admin.metadata[0].name, "rootPassword"]
            }
            content {
              name = env.key
              value_from {
                secret_key_ref {
                  name = env.value[0]
                  key  = env.value[1]
                }
              }
            }
          }
        }
      }
    }
  }
  wait_for_completion = true
  timeouts {
    create = "10m"
  }
}

resource "kubernetes_network_policy" "platform" {
  metadata {
    name      = "ssz-platform"
    namespace = kubernetes_namespace.ssz.metadata[0].name
  }
  spec {
    pod_selector {
      match_labels = { "app.kubernetes.io/part-of" = "smart-safety-zone" }
    }
    policy_types = ["Ingress", "Egress"]
    ingress {
      from {
        pod_selector {
          match_labels = { "app.kubernetes.io/part-of" = "smart-safety-zone" }
        }
      }
      from {
        pod_selector {
          match_labels = { "app.kubernetes.io/name" = "kuberay-operator" }
        }
      }
    }
    egress {
      to {
        pod_selector {
          match_labels = { "app.kubernetes.io/part-of" = "smart-safety-zone" }
        }
      }
    }
    egress {
      to {
        namespace_selector {}
        pod_selector {
          match_labels = { "k8s-app" = "kube-dns" }
        }
      }
      ports {
        port     = "53"
        protocol = "UDP"
      }
      ports {
        port     = "53"
        protocol = "TCP"
      }
    }
    dynamic "egress" {
      for_each = var.camera_cidrs
      content {
        to {
          ip_block {
            cidr = egress.value
          }
        }
        ports {
          port     = "554"
          protocol = "TCP"
        }
      }
    }
  }
}

resource "kubernetes_network_policy" "api" {
  metadata {
    name      = "ssz-api"
    namespace = kubernetes_namespace.ssz.metadata[0].name
  }
  spec {
    pod_selector {
      match_labels = { "app.kubernetes.io/part-of" = "smart-safety-zone" }
      match_expressions {
        key      = "ray.io/node-type"
        operator = "Exists"
      }
    }
    policy_types = ["Ingress"]
    dynamic "ingress" {
      for_each = var.api_ingress_namespaces
      content {
        from {
          namespace_selector {
            match_labels = { "kubernetes.io/metadata.name" = ingress.value }
          }
        }
        ports {
          port     = "8000"
          protocol = "TCP"
        }
      }
    }
  }
}
