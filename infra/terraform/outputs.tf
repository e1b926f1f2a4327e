output "api_service" {
  description = "In-cluster address of the HTTP API (ClusterIP: reach it through your ingress or VPN)."
  value       = "http://ssz-serve-svc.${var.namespace}.svc.cluster.local:8000"
}

output "s3_endpoint" {
  description = "In-cluster MinIO endpoint (SSZ_S3_ENDPOINT)."
  value       = local.s3_endpoint
}

output "ray_address" {
  description = "Ray client address for `SSZ_RAY_ADDRESS` from inside the cluster."
  value       = "ray://ssz-head-svc.${var.namespace}.svc.cluster.local:10001"
}
