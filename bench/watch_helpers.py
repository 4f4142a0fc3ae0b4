"""Helpers for bench/watch (run with the venv's Python: 3.11+ for tomllib, boto3 for the moto part).

Every address this touches is on loopback: the lab's master UI, and moto on 127.0.0.1.

    watch_helpers.py free-port
    watch_helpers.py wait-http URL SECS
    watch_helpers.py inv-addrs INVENTORY.toml                 -> "name address" per line
    watch_helpers.py spark-section LAB_SPARKBOOT.toml         -> the [spark] table's lines
    watch_helpers.py alive-ids MASTER                         -> ALIVE worker ids, one a line
    watch_helpers.py alive-wait MASTER T0 SECS HOSTS [OLD_IDS_FILE]
        polls http://MASTER:8080/json/ every 0.25 s until every host in HOSTS (comma-separated
        addresses) has an ALIVE worker whose id is not in OLD_IDS_FILE; prints the seconds since
        T0 (epoch seconds) and, per host, when it was first seen ALIVE
    watch_helpers.py wait-event LOG SKIP SECS key=value...    -> the first JSON line after SKIP
        lines whose fields match (values compared as text)
    watch_helpers.py lines LOG                                -> line count
    watch_helpers.py events LOG SKIP key=value...             -> every matching line after SKIP
    watch_helpers.py check-converge REPORT.json N MODE        -> MODE first|noop; exit 1 + reason
    watch_helpers.py aws-setup ENDPOINT OCTET CLUSTER OUT.json
    watch_helpers.py interrupt ENDPOINT QUEUE_URL INSTANCE    -> the send time, epoch ms
    watch_helpers.py get KEY...  < JSON                       -> the values, one a line
    watch_helpers.py node-times-script                        -> NODE_TIMES_SCRIPT, for `sparkboot exec`
    watch_helpers.py node-times EXEC_REPORT.json T0           -> "host install start registered"
        per host, in seconds after T0, from the output of NODE_TIMES_SCRIPT run by `sparkboot exec`
"""

import json
import os
import socket
import sys
import time
import tomllib
import urllib.request

REGION = "us-east-1"
AMI = "ami-04681a1dbd79675a5"  # one of moto's built-in images, as the integration tests use


def fail(msg):
    sys.exit(f"watch_helpers: {msg}")


# Run on a node (by `sparkboot exec`): when the Spark link was made (the archive downloaded,
# verified and unpacked), when the worker daemon logged its first line, and when it registered with
# the master; epoch seconds (Spark logs whole seconds as yy/MM/dd HH:mm:ss), 0 when not found.
NODE_TIMES_SCRIPT = r"""
ts() { [ -n "$1" ] || { echo 0; return; }; date -d "20$(printf %s "$1" | cut -c1-8 | tr / -) $(printf %s "$1" | cut -c10-17)" +%s 2>/dev/null || echo 0; }
f=$(ls /var/log/spark/*Worker*.out 2>/dev/null | head -1)
i=$(stat -c %Z /opt/spark 2>/dev/null || echo 0)
s=$([ -n "$f" ] && grep -m1 -E '^[0-9]{2}/[0-9]{2}/[0-9]{2} [0-9:]{8} ' "$f" | cut -c1-17)
r=$([ -n "$f" ] && grep -m1 'Successfully registered with master' "$f" | cut -c1-17)
echo "$i $(ts "$s") $(ts "$r")"
"""


def master_doc(master):
    try:
        with urllib.request.urlopen(f"http://{master}:8080/json/", timeout=5) as r:
            return json.load(r)
    except Exception:
        return {}


def alive(master):
    """(id, host) of every ALIVE worker the master lists."""
    return [
        (w.get("id", ""), w.get("host", ""))
        for w in master_doc(master).get("workers", [])
        if w.get("state") == "ALIVE"
    ]


def matches(ev, conds):
    for c in conds:
        k, _, v = c.partition("=")
        if str(ev.get(k)) != v:
            return False
    return True


def read_events(path, skip):
    out = []
    try:
        with open(path) as f:
            for i, line in enumerate(f):
                if i < skip:
                    continue
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    except FileNotFoundError:
        pass
    return out


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "free-port":
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
        s.close()
    elif cmd == "wait-http":
        url, secs = args[0], float(args[1])
        end = time.time() + secs
        while time.time() < end:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                return
            except Exception:
                time.sleep(0.2)
        fail(f"{url} did not answer within {secs:.0f} s")
    elif cmd == "inv-addrs":
        inv = tomllib.load(open(args[0], "rb"))
        for h in [inv["master"]] + inv.get("workers", []):
            print(h["name"], h["address"])
    elif cmd == "spark-section":
        cfg = tomllib.load(open(args[0], "rb"))
        for k, v in cfg["spark"].items():
            print(f"{k} = {json.dumps(v)}")
    elif cmd == "alive-ids":
        for i, _ in alive(args[0]):
            print(i)
    elif cmd == "alive-wait":
        master, t0, secs = args[0], float(args[1]), float(args[2])
        hosts = [h for h in args[3].split(",") if h]
        old = set()
        if len(args) > 4:
            old = set(open(args[4]).read().split())
        seen = {}
        while True:
            now = time.time()
            for wid, host in alive(master):
                if host in hosts and wid not in old and host not in seen:
                    seen[host] = now - t0
            if len(seen) == len(hosts):
                print(f"{time.time() - t0:.2f}")
                print(" ".join(f"{h}={seen[h]:.1f}" for h in hosts))
                return
            if now - t0 > secs:
                missing = [h for h in hosts if h not in seen]
                fail(f"not ALIVE within {secs:.0f} s: {' '.join(missing)}")
            time.sleep(0.25)
    elif cmd == "wait-event":
        path, skip, secs, conds = args[0], int(args[1]), float(args[2]), args[3:]
        end = time.time() + secs
        while True:
            for ev in read_events(path, skip):
                if matches(ev, conds):
                    print(json.dumps(ev))
                    return
            if time.time() > end:
                fail(f"no watch event {' '.join(conds)} in {path} within {secs:.0f} s")
            time.sleep(0.25)
    elif cmd == "lines":
        try:
            print(sum(1 for _ in open(args[0])))
        except FileNotFoundError:
            print(0)
    elif cmd == "events":
        for ev in read_events(args[0], int(args[1])):
            if matches(ev, args[2:]):
                print(json.dumps(ev))
    elif cmd == "check-converge":
        path, n, mode = args[0], int(args[1]), args[2]
        doc = json.load(open(path))
        hosts = doc["hosts"]
        bad = []
        if len(hosts) != n:
            bad.append(f"{len(hosts)} hosts in the report, expected {n}")
        for h in hosts:
            if h["failed"] or h["unreachable"]:
                bad.append(f"{h['name']}: failed={h['failed']} unreachable={h['unreachable']} {h.get('error', '')}")
            elif mode == "noop" and h["changed"]:
                steps = [s["step"] for s in h.get("steps", []) if s.get("changed")]
                bad.append(f"{h['name']}: changed={h['changed']} on a no-op run ({'; '.join(steps)})")
            elif mode == "first" and not h["changed"]:
                bad.append(f"{h['name']}: changed=0 on fresh nodes")
        if bad:
            fail(f"converge report {path}:\n  " + "\n  ".join(bad[:10]))
    elif cmd == "get":
        doc = json.load(sys.stdin)
        for k in args:
            v = doc
            for part in k.split("."):
                v = v[int(part)] if isinstance(v, list) else v.get(part)
            # One line per value: a multi-line string (a decommission's outcome) is joined with "; ".
            print("; ".join(v.splitlines()) if isinstance(v, str) else json.dumps(v))
    elif cmd == "node-times-script":
        sys.stdout.write(NODE_TIMES_SCRIPT)
    elif cmd == "node-times":
        doc, t0 = json.load(open(args[0])), float(args[1])
        for hst in doc["hosts"]:
            vals = (hst.get("stdout") or "0 0 0").split()
            rel = [f"{int(v) - t0:.0f}" if v.isdigit() and int(v) > 0 else "?" for v in vals[:3]]
            print(hst["name"], *rel)
    elif cmd == "aws-setup":
        aws_setup(*args)
    elif cmd == "interrupt":
        endpoint, queue, instance = args
        body = json.dumps({
            "version": "0", "id": f"spot-{instance}",
            "detail-type": "EC2 Spot Instance Interruption Warning",
            "source": "aws.ec2", "account": "123456789012",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": REGION,
            "resources": [f"arn:aws:ec2:{REGION}a:instance/{instance}"],
            "detail": {"instance-id": instance, "instance-action": "terminate"},
        })
        sqs = clients(endpoint)["sqs"]
        sent = time.time()
        sqs.send_message(QueueUrl=queue, MessageBody=body)
        print(int(sent * 1000))
    else:
        fail(f"unknown command {cmd}")


def clients(endpoint):
    import boto3

    kw = dict(region_name=REGION, endpoint_url=endpoint,
              aws_access_key_id="testing", aws_secret_access_key="testing")
    return {s: boto3.client(s, **kw) for s in ("ec2", "autoscaling", "sqs")}


def aws_setup(endpoint, octet, cluster, out):
    """A VPC 127.<octet>.0.0/16 with a subnet 127.<octet>.1.0/24, the master instance, a launch
    template and an Auto Scaling group (desired 2) carrying the cluster's tags, and an SQS queue:
    what `--inventory aws` discovers, as tests/integration/aws.rs sets it up."""
    c = clients(endpoint)
    ec2, asg, sqs = c["ec2"], c["autoscaling"], c["sqs"]
    vpc = ec2.create_vpc(CidrBlock=f"127.{octet}.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"127.{octet}.1.0/24",
                               AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]

    def tags(role):
        return [{"Key": "sparkboot:cluster", "Value": cluster}, {"Key": "sparkboot:role", "Value": role}]

    master = ec2.run_instances(
        ImageId=AMI, InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=subnet,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags("master")}],
    )["Instances"][0]
    ec2.create_launch_template(
        LaunchTemplateName=f"{cluster}-worker",
        LaunchTemplateData={
            "ImageId": AMI, "InstanceType": "t3.micro",
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags("worker")}],
        },
    )
    group = f"{cluster}-workers"
    asg.create_auto_scaling_group(
        AutoScalingGroupName=group,
        LaunchTemplate={"LaunchTemplateName": f"{cluster}-worker", "Version": "$Latest"},
        MinSize=0, MaxSize=10, DesiredCapacity=2, VPCZoneIdentifier=subnet,
        Tags=[dict(t, PropagateAtLaunch=True) for t in tags("worker")],
    )
    queue = sqs.create_queue(QueueName=f"{cluster}-events")["QueueUrl"]
    members = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]
    ids = [m["InstanceId"] for m in members]
    res = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    workers = sorted(
        (i["InstanceId"], i["PrivateIpAddress"]) for r in res for i in r["Instances"]
    )
    doc = {"vpc": vpc, "subnet": subnet, "master_id": master["InstanceId"],
           "master_ip": master["PrivateIpAddress"], "asg": group, "queue_url": queue,
           "workers": workers}
    for ip in [doc["master_ip"]] + [w[1] for w in workers]:
        if not ip.startswith(f"127.{octet}.1."):
            fail(f"moto handed out {ip}, outside 127.{octet}.1.0/24")
    with open(out, "w") as f:
        json.dump(doc, f)


if __name__ == "__main__":
    main()
