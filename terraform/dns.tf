# A private Route53 zone attached to the cluster's VPC, with an A record for the master, so
# workers and jobs can use a stable name instead of an IP that changes when the master is
# replaced.

resource "aws_route53_zone" "cluster" {
  count = local.create ? 1 : 0

  name    = local.dns_zone_name
  comment = "Private zone of sparkboot cluster ${var.cluster_name}"

  vpc {
    vpc_id = var.vpc_id
  }

  tags = local.common_tags
}

resource "aws_route53_record" "master" {
  count = local.create ? 1 : 0

  zone_id = aws_route53_zone.cluster[0].zone_id
  name    = "${var.master_dns_label}.${local.dns_zone_name}"
  type    = "A"
  ttl     = 60
  records = [aws_instance.master[0].private_ip]
}
