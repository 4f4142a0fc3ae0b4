#!/usr/bin/env python3
"""Assertions for tests/terraform/run.sh.

  checks.py plan PLAN.json
      Every user-data value in a `terraform show -json` plan is free of key material and
      secrets; no launch configuration is planned; every node is IMDSv2-only with encrypted
      root storage.
  checks.py drift PLAN.json
      A second plan, right after apply against moto, changes nothing except the known places
      where moto answers differently from AWS (listed in MOTO_DRIFT, each with its reason).
  checks.py moto ENDPOINT REGION CLUSTER WORKERS
      After `terraform apply` against moto: the user-data the emulator actually stores for every
      instance and launch-template version is clean, and the cluster has the shape sparkboot
      expects (one tagged master, WORKERS tagged spot workers in the ASG, loopback addresses
      only, no public IPs).
  checks.py gone ENDPOINT REGION CLUSTER
      After `terraform destroy`: no live instance, Auto Scaling group or bucket of CLUSTER is
      left in moto.

Exits 1 with one line per problem, 0 with a one-line summary. Only talks to ENDPOINT, which
run.sh guarantees is a moto server on 127.0.0.1.
"""

import base64
import binascii
import gzip
import ipaddress
import json
import re
import sys

# Text that must never appear in user-data. Cloud-config keys that carry passwords or keys are
# listed too: the module's user-data has no business setting any of them.
FORBIDDEN_SUBSTRINGS = [
    "PRIVATE KEY",
    "BEGIN",
    "ssh-rsa",
    "ssh-ed25519",
    "ssh-dss",
    "ecdsa-sha2-",
    "sk-ssh-",
    "sk-ecdsa-",
    "ssh_authorized_keys",
    "ssh_keys:",
    "chpasswd",
    "passwd:",
    "password:",
    "secret_access_key",
    "session_token",
]

# AWS access key IDs, and 40-character base64 runs that look like secret access keys (mixed
# case, so a lower-case hex SHA-1 does not count).
ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA)[A-Z0-9]{16}(?![A-Z0-9])")
SECRET_LIKE = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
HEX_SHA1 = re.compile(r"^[0-9a-f]{40}$")


def decode_user_data(value):
    """Returns the readable forms of a user-data value: itself and, when it is base64 (and
    maybe gzip inside), its decoded text."""
    forms = [value]
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return forms
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except OSError:
            pass
    try:
        forms.append(raw.decode("utf-8"))
    except UnicodeDecodeError:
        forms.append(raw.decode("latin-1"))
    return forms


def secret_problems(where, value):
    problems = []
    if not isinstance(value, str) or value == "":
        return problems
    if HEX_SHA1.match(value):
        return [f"{where}: user-data is only a SHA-1 hash, so it cannot be inspected; pass it as user_data_base64"]
    for text in decode_user_data(value):
        lower = text.lower()
        for needle in FORBIDDEN_SUBSTRINGS:
            if needle.lower() in lower:
                problems.append(f"{where}: user-data contains {needle!r}")
        if ACCESS_KEY_ID.search(text):
            problems.append(f"{where}: user-data contains something shaped like an AWS access key ID")
        for m in SECRET_LIKE.finditer(text):
            s = m.group(0)
            if re.search(r"[A-Z]", s) and re.search(r"[a-z]", s) and re.search(r"[0-9/+]", s):
                problems.append(f"{where}: user-data contains a 40-character string shaped like an AWS secret key")
                break
    return sorted(set(problems))


def walk(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from walk(v, f"{path}.{k}" if path else k)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from walk(v, f"{path}[{i}]")
    else:
        yield path, obj


def check_plan(plan_path):
    with open(plan_path) as f:
        plan = json.load(f)
    problems = []
    inspected = 0
    nodes = {"aws_instance": 0, "aws_launch_template": 0}
    for rc in plan.get("resource_changes", []):
        addr, rtype = rc["address"], rc["type"]
        after = (rc.get("change") or {}).get("after") or {}
        if rtype == "aws_launch_configuration":
            problems.append(f"{addr}: launch configurations are not allowed; use a launch template")
        for path, value in walk(after):
            leaf = path.rsplit(".", 1)[-1]
            if leaf in ("user_data", "user_data_base64") and isinstance(value, str) and value:
                inspected += 1
                problems += secret_problems(f"{addr} {path}", value)
        if rtype in nodes:
            nodes[rtype] += 1
            if not after.get("user_data") and not after.get("user_data_base64"):
                problems.append(f"{addr}: no user-data in the plan to inspect")
            meta = (after.get("metadata_options") or [{}])[0]
            if meta.get("http_tokens") != "required":
                problems.append(f"{addr}: metadata_options.http_tokens is not \"required\" (IMDSv2 only)")
            if rtype == "aws_instance":
                roots = after.get("root_block_device") or [{}]
                if not all(r.get("encrypted") for r in roots):
                    problems.append(f"{addr}: root volume is not encrypted")
            else:
                bdms = after.get("block_device_mappings") or []
                if not bdms or not all((b.get("ebs") or [{}])[0].get("encrypted") == "true" for b in bdms):
                    problems.append(f"{addr}: block device mappings are not all encrypted")
    for rtype, n in nodes.items():
        if n == 0:
            problems.append(f"plan has no {rtype}: nothing to check")
    return problems, f"plan: {inspected} user-data values inspected, {sum(nodes.values())} node definitions checked"


# Where a plan made right after `terraform apply` against moto differs from the applied
# configuration only because moto's answers differ from AWS's. (resource type, changed-path
# regex, reason). Anything else that changes on a second plan is a real drift and fails.
MOTO_DRIFT = [
    ("aws_instance", r"^associate_public_ip_address$",
     "moto returns an empty NetworkInterfaces[].Association for a private instance, which the "
     "provider reads as a public IP, so it plans to replace the master"),
    ("aws_launch_template", r"^tag_specifications\[\d+\]\.(resource_type|tags\..*)$",
     "moto echoes the template's own tags as an extra 'launch-template' tag specification"),
    ("aws_launch_template", r"^(latest|default)_version$",
     "knock-on: a new template version follows the tag_specifications update above"),
    ("aws_autoscaling_group", r"^mixed_instances_policy\[0\]\.launch_template\[0\]\.launch_template_specification\[0\]\.version$",
     "knock-on: the group follows the template's new version"),
    ("aws_autoscaling_group", r"^capacity_reservation_specification\[0\]\.capacity_reservation_preference$",
     "moto omits CapacityReservationSpecification from DescribeAutoScalingGroups"),
    ("aws_route53_record", r"^records$",
     "knock-on: the master's address is unknown while its replacement is planned"),
    ("aws_route53_zone", r"^vpc\[0\]\.vpc_(id|region)$",
     "moto's GetHostedZone does not list the VPCs of a private zone"),
    ("aws_vpc_security_group_ingress_rule", r"^(referenced_security_group_id|description)$",
     "moto returns a self-reference as ACCOUNT/sg-ID and drops its description"),
    ("aws_vpc_security_group_egress_rule", r"^(referenced_security_group_id|description)$",
     "moto returns a self-reference as ACCOUNT/sg-ID and drops its description"),
]


def changed_paths(before, after, unknown, path=""):
    """Leaf paths where a planned change differs: values that change or become unknown."""
    if unknown is True:
        yield path
        return
    if isinstance(before, dict) or isinstance(after, dict):
        b = before if isinstance(before, dict) else {}
        a = after if isinstance(after, dict) else {}
        u = unknown if isinstance(unknown, dict) else {}
        for k in sorted(set(a) | set(b) | set(u)):
            yield from changed_paths(b.get(k), a.get(k), u.get(k), f"{path}.{k}" if path else k)
    elif isinstance(before, list) or isinstance(after, list):
        b = before if isinstance(before, list) else []
        a = after if isinstance(after, list) else []
        u = unknown if isinstance(unknown, list) else []
        for i in range(max(len(a), len(b), len(u))):
            yield from changed_paths(b[i] if i < len(b) else None, a[i] if i < len(a) else None,
                                     u[i] if i < len(u) else None, f"{path}[{i}]")
    elif before != after:
        yield path


def check_drift(plan_path):
    with open(plan_path) as f:
        plan = json.load(f)
    problems, tolerated = [], {}
    for rc in plan.get("resource_changes", []):
        change = rc.get("change") or {}
        actions = change.get("actions") or []
        if actions in (["no-op"], ["read"]):
            continue
        addr, rtype = rc["address"], rc["type"]
        rules = [(rx, why) for t, rx, why in MOTO_DRIFT if t == rtype]
        if "delete" in actions:
            # A replacement is tolerated only when every forcing path is a known quirk; all the
            # other attributes of a replaced resource are unknown as a consequence.
            forcing = [".".join(map(str, p)) for p in change.get("replace_paths") or []]
            bad = [p for p in forcing if not any(re.match(rx, p) for rx, _ in rules)] or ([] if forcing else ["(no replace_paths)"])
            if bad:
                problems.append(f"{addr}: second plan {'/'.join(actions)} forced by {bad}")
            else:
                tolerated[addr] = {why for rx, why in rules if any(re.match(rx, p) for p in forcing)}
            continue
        before_specs = (change.get("before") or {}).get("tag_specifications") or []
        for path in changed_paths(change.get("before"), change.get("after"), change.get("after_unknown")):
            hits = [why for rx, why in rules if re.match(rx, path)]
            m = re.match(r"^tag_specifications\[(\d+)\]", path)
            if m and hits and not (int(m.group(1)) < len(before_specs)
                                   and before_specs[int(m.group(1))].get("resource_type") == "launch-template"):
                hits = []  # only moto's extra 'launch-template' specification is tolerated
            if hits:
                tolerated.setdefault(addr, set()).update(hits)
            else:
                problems.append(f"{addr}: second plan changes {path}")
    for addr in sorted(tolerated):
        for why in sorted(tolerated[addr]):
            print(f"  tolerated: {addr}: {why}")
    return problems, f"drift: {len(tolerated)} resources differ only by known moto quirks"


def check_moto(endpoint, region, cluster, workers):
    import boto3  # from the test venv (a moto dependency)

    kw = dict(endpoint_url=endpoint, region_name=region,
              aws_access_key_id="testing", aws_secret_access_key="testing")
    ec2 = boto3.client("ec2", **kw)
    asg = boto3.client("autoscaling", **kw)
    problems = []

    reservations = ec2.describe_instances(Filters=[
        {"Name": "tag:sparkboot:cluster", "Values": [cluster]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]},
    ])["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    by_role = {}
    for inst in instances:
        tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
        role = tags.get("sparkboot:role")
        by_role.setdefault(role, []).append(inst)
        iid = inst["InstanceId"]
        ip = inst.get("PrivateIpAddress", "")
        if not ip or not ipaddress.ip_address(ip).is_loopback:
            problems.append(f"{iid}: private IP {ip!r} is not a loopback address")
        if inst.get("PublicIpAddress"):
            problems.append(f"{iid}: has a public IP {inst['PublicIpAddress']}")
        ud = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData").get("UserData", {}).get("Value", "")
        problems += secret_problems(f"instance {iid} ({role})", ud)
        if not ud:
            problems.append(f"instance {iid} ({role}): no user-data stored")

    if len(by_role.get("master", [])) != 1:
        problems.append(f"expected 1 instance tagged sparkboot:role=master, found {len(by_role.get('master', []))}")
    if len(by_role.get("worker", [])) != workers:
        problems.append(f"expected {workers} instances tagged sparkboot:role=worker, found {len(by_role.get('worker', []))}")
    unknown = set(by_role) - {"master", "worker"}
    if unknown:
        problems.append(f"instances with unexpected sparkboot:role values: {sorted(map(str, unknown))}")

    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[f"{cluster}-workers"])["AutoScalingGroups"]
    if len(groups) != 1:
        problems.append(f"Auto Scaling group {cluster}-workers not found")
    else:
        g = groups[0]
        if "LaunchConfigurationName" in g:
            problems.append("the worker group uses a launch configuration")
        mip = g.get("MixedInstancesPolicy") or {}
        dist = mip.get("InstancesDistribution") or {}
        if dist.get("SpotAllocationStrategy") != "price-capacity-optimized":
            problems.append(f"spot allocation strategy is {dist.get('SpotAllocationStrategy')!r}")
        if dist.get("OnDemandPercentageAboveBaseCapacity") != 0 or dist.get("OnDemandBaseCapacity") != 0:
            problems.append("worker group is not all spot")
        if len((mip.get("LaunchTemplate") or {}).get("Overrides", [])) < 2:
            problems.append("worker group offers fewer than two instance types")
        if not g.get("CapacityRebalance"):
            problems.append("capacity rebalance is off")
        members = {i["InstanceId"] for i in g.get("Instances", [])}
        tagged = {i["InstanceId"] for i in by_role.get("worker", [])}
        if members != tagged:
            problems.append(f"ASG members {sorted(members)} differ from worker-tagged instances {sorted(tagged)}")
        lt = (mip.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification") or {}
        if lt.get("LaunchTemplateId"):
            versions = ec2.describe_launch_template_versions(LaunchTemplateId=lt["LaunchTemplateId"])["LaunchTemplateVersions"]
            for v in versions:
                data = v.get("LaunchTemplateData", {})
                where = f"launch template {lt['LaunchTemplateId']} v{v.get('VersionNumber')}"
                problems += secret_problems(where, data.get("UserData", ""))
                if (data.get("MetadataOptions") or {}).get("HttpTokens") != "required":
                    problems.append(f"{where}: IMDSv2 is not required")

    summary = (f"moto: {len(instances)} instances ({len(by_role.get('master', []))} master, "
               f"{len(by_role.get('worker', []))} workers) at "
               + ", ".join(sorted(i.get("PrivateIpAddress", "?") for i in instances)))
    return problems, summary


def check_gone(endpoint, region, cluster):
    import boto3

    kw = dict(endpoint_url=endpoint, region_name=region,
              aws_access_key_id="testing", aws_secret_access_key="testing")
    problems = []
    reservations = boto3.client("ec2", **kw).describe_instances(Filters=[
        {"Name": "tag:sparkboot:cluster", "Values": [cluster]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
    ])["Reservations"]
    left = [i["InstanceId"] for r in reservations for i in r["Instances"]]
    if left:
        problems.append(f"instances left after destroy: {left}")
    groups = boto3.client("autoscaling", **kw).describe_auto_scaling_groups(
        AutoScalingGroupNames=[f"{cluster}-workers"])["AutoScalingGroups"]
    if groups:
        problems.append(f"Auto Scaling group {cluster}-workers left after destroy")
    buckets = [b["Name"] for b in boto3.client("s3", **kw).list_buckets().get("Buckets", [])
               if b["Name"].startswith(f"{cluster}-")]
    if buckets:
        problems.append(f"buckets left after destroy: {buckets}")
    return problems, "destroy: no instance, group or bucket of the cluster left"


def main(argv):
    if len(argv) >= 2 and argv[0] == "plan":
        problems, summary = check_plan(argv[1])
    elif len(argv) >= 2 and argv[0] == "drift":
        problems, summary = check_drift(argv[1])
    elif len(argv) >= 4 and argv[0] == "gone":
        problems, summary = check_gone(argv[1], argv[2], argv[3])
    elif len(argv) >= 5 and argv[0] == "moto":
        problems, summary = check_moto(argv[1], argv[2], argv[3], int(argv[4]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in problems:
        print(f"  problem: {p}")
    print(f"  {summary}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
