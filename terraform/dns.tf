# A private Route53 zone attached to the cluster's VPC, with an A record for the master, so
# workers and jobs can use a stable name instead of an IP that changes when the master is
# replaced.

resource "aws_route53_zone" "cluster" {
  name    = local.dns_zone_name
  comment = "Private zone of sparkboot cluster ${var.cluster_name}"

  vpc {
    vpc_id = var.vpc_id
  }

  tags = local.common_tags
}

resource "aws_route53_record" "master" {
  zone_id = aws_route53_zone.cluster.zone_id
  name    = "${var.master_dns_label}.${local.dns_zone_name}"
  type    = "A"
  ttl     = 60
  records = [aws_instance.master.private_ip]
}
