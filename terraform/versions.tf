terraform {
  # 1.5: check blocks (the deprecation warning for associate_public_ip_address), moved blocks,
  # optional() object attributes and startswith()/strcontains() in validations.
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.x and 6.x. Tested with 5.100.0; the module uses no argument or attribute that 6.x
      # removes or deprecates (see README.md, "Provider versions").
      version = ">= 5.46, < 7.0"
    }
  }
}
