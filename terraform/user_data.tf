# Minimal user-data: disable SSH password logins and record which cluster and role the node
# belongs to. Everything else (Java, Spark, keys between nodes) is sparkboot's job over SSH, so
# nothing here is secret. tests/terraform/run.sh checks the rendered values for key material.
# Both the master and the launch template take it base64-encoded: aws_instance keeps plain
# `user_data` only as a SHA-1 hash in plans and state, which no reviewer or test could inspect.

locals {
  master_user_data = templatefile("${path.module}/user_data.tftpl", {
    cluster_name = var.cluster_name
    role         = "master"
  })

  worker_user_data = templatefile("${path.module}/user_data.tftpl", {
    cluster_name = var.cluster_name
    role         = "worker"
  })
}
