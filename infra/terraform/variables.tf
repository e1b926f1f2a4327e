variable "kubeconfig_path" {
  description = "kubeconfig of the target cluster (the police data centre's Kubernetes)."
  type        = string
  default     = "~/.kube/config"
}

variable "kube_context" {
  description = "kubeconfig context; null uses the current one."
  type        = string
  default     = null
}

variable "namespace" {
  description = "Namespace of the Smart Safety Zone platform."
  type        = string
  default     = "ssz"
}

variable "city" {
  description = "Bundled city id (hatyai, betong, sukhothai, chiangmai) the cluster serves."
  type        = string
  default     = "hatyai"
}

variable "ray_image" {
  description = "Container image with the smart-safety-zone package installed (built from this repository)."
  type        = string
  default     = "registry.internal/ssz/platform:0.1.0"
}

variable "kuberay_chart_version" {
  description = "Version of the KubeRay operator Helm chart."
  type        = string
  default     = "1.3.0"
}

variable "minio_chart_version" {
  description = "Version of the MinIO Helm chart."
  type        = string
  default     = "5.4.0"
}

variable "cpu_workers" {
  description = "Camera-shard workers (CPU): decode, motion gate, tracking."
  type = object({
    min      = number
    max      = number
    cpu      = string
    memory   = string
    replicas = number
  })
  default = { min = 2, max = 20, cpu = "8", memory = "16Gi", replicas = 4 }
}

variable "gpu_workers" {
  description = "Serve workers on the GPU node pool: face and plate models."
  type = object({
    min      = number
    max      = number
    gpus     = number
    cpu      = string
    memory   = string
    replicas = number
  })
  default = { min = 1, max = 8, gpus = 1, cpu = "8", memory = "32Gi", replicas = 2 }
}

variable "gpu_node_selector" {
  description = "Labels of the GPU node pool (e.g. cloud.google.com/gke-accelerator or a label of your own)."
  type        = map(string)
  default     = { "ssz/pool" = "gpu" }
}

variable "gpu_tolerations" {
  description = "Taints of the GPU node pool that Serve workers tolerate."
  type = list(object({
    key      = string
    operator = string
    value    = optional(string)
    effect   = string
  }))
  default = [{ key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" }]
}

variable "minio_replicas" {
  description = "MinIO servers (distributed mode needs 4 or more for erasure coding)."
  type        = number
  default     = 4
  validation {
    condition     = var.minio_replicas >= 4
    error_message = "MinIO distributed mode needs at least 4 replicas."
  }
}

variable "minio_volume_size" {
  description = "Persistent volume per MinIO server."
  type        = string
  default     = "500Gi"
}

variable "evidence_retention_days" {
  description = "Object-lock COMPLIANCE retention of evidence crops, audit events and anchors, in days. Set once by the ssz-store-init job; a smaller value later never lowers it."
  type        = number
  default     = 365
  validation {
    condition     = var.evidence_retention_days >= 1 && var.evidence_retention_days <= 36500
    error_message = "Retention must be 1..36500 days."
  }
}

variable "s3_admin_access_key" {
  description = "MinIO root user: used by MinIO and the ssz-store-init job only, never by the platform's pods."
  type        = string
  sensitive   = true
}

variable "s3_admin_secret_key" {
  description = "MinIO root password."
  type        = string
  sensitive   = true
  validation {
    condition     = length(var.s3_admin_secret_key) >= 16
    error_message = "Use a secret key of at least 16 characters."
  }
}

variable "s3_access_key" {
  description = "Access key of the platform's least-privilege MinIO user (policy ssz-platform), used by every pod."
  type        = string
  sensitive   = true
}

variable "s3_secret_key" {
  description = "Secret key of the platform user."
  type        = string
  sensitive   = true
  validation {
    condition     = length(var.s3_secret_key) >= 16
    error_message = "Use a secret key of at least 16 characters."
  }
}

variable "audit_key" {
  description = "HMAC key of the audit logs (SSZ_AUDIT_KEY), 32+ random bytes as hex: python -c 'import secrets; print(secrets.token_hex(32))'. Keep it in your secret manager, apart from the logs."
  type        = string
  sensitive   = true
  validation {
    condition     = can(regex("^[0-9a-fA-F]{64,}$", var.audit_key))
    error_message = "Give at least 32 bytes as hex (64 hex characters)."
  }
}

variable "api_token_key" {
  description = "HMAC key under which API tokens are hashed (SSZ_API_TOKEN_KEY), 32+ random bytes as hex."
  type        = string
  sensitive   = true
  validation {
    condition     = can(regex("^[0-9a-fA-F]{64,}$", var.api_token_key))
    error_message = "Give at least 32 bytes as hex (64 hex characters)."
  }
}

variable "ray_auth_token" {
  description = "Ray's cluster token (RAY_AUTH_MODE=token on every pod): 32+ random bytes as hex."
  type        = string
  sensitive   = true
  validation {
    condition     = length(var.ray_auth_token) >= 64
    error_message = "Give at least 32 bytes as hex (64 hex characters)."
  }
}

variable "api_ingress_namespaces" {
  description = "Namespaces (by name) whose pods may reach the API on port 8000, e.g. your ingress controller's."
  type        = list(string)
  default     = ["ingress-nginx"]
}

variable "camera_cidrs" {
  description = "Networks of the cameras / NVRs the camera shards read RTSP from (egress allowed to these only)."
  type        = list(string)
  default     = ["10.0.0.0/8"]
}
