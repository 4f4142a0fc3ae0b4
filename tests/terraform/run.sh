#!/usr/bin/env bash
# Checks of the Terraform module in terraform/, offline:
#   1. terraform fmt -check; terraform validate (no warning) of the module and both examples;
#      nothing the AWS provider 6.x removes or deprecates; invalid inputs refused; the README's
#      tables generated from the module; the test's own detectors catch planted problems
#   2. checkov on terraform/: 0 failed checks, and every skip carries a reason
#   3. against a local moto server: plans of the switches (create, enable_watch) and of the
#      real-estate inputs, plan-time preconditions; then for examples/complete and
#      examples/private-workers in loopback VPCs: plan (user-data checked for key material and
#      presigned URLs), apply (both at once), the cluster's shape, the spot-churn plumbing
#      (hooks, rules, queue, policies); for complete, events published with PutEvents reaching
#      the queue and an upgrade plan from the module's first version (moved.tf); a second plan
#      (only known moto quirks may differ), destroy (both at once), nothing left behind.
# Prints one line per step with its time and ends with "N passed, M failed"; exits non-zero if
# anything failed. SPARKBOOT_TF_KEEP=1 keeps the temporary working copy, plans and step logs.
#
# Network: the Python tools (checkov, moto) are installed from PyPI into
# ${SPARKBOOT_CACHE:-/var/cache/sparkboot}/venv first, if missing. Everything after that runs,
# when we are root, inside a fresh network namespace with only loopback up (unshare --net), so
# no step can send a packet off this machine. Terraform gets its provider from the filesystem
# mirror (tests/terraform/terraformrc), its update check is off, and the provider talks only to
# the moto server on 127.0.0.1.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/tests/terraform"
CACHE="${SPARKBOOT_CACHE:-/var/cache/sparkboot}"
VENV="$CACHE/venv"

export TF_CLI_CONFIG_FILE="$HERE/terraformrc"
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
unset TF_DATA_DIR TF_WORKSPACE TF_PLUGIN_CACHE_DIR

log() { printf '%s\n' "$*"; }

# ---------------------------------------------------------------------------------------------
# Setup (may use PyPI), then re-run isolated from the network.
# ---------------------------------------------------------------------------------------------
if [ -z "${SPARKBOOT_TF_ISOLATED:-}" ]; then
  stamp="$VENV/.sparkboot-tests-terraform-requirements"
  if [ ! -x "$VENV/bin/checkov" ] || [ ! -x "$VENV/bin/moto_server" ] ||
    ! cmp -s "$HERE/requirements.txt" "$stamp"; then
    log "== setup: Python tools into $VENV (pip cache $CACHE/pip)"
    mkdir -p "$CACHE/pip"
    if ! { [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"; } ||
      ! "$VENV/bin/python" -m pip install --quiet --cache-dir "$CACHE/pip" -r "$HERE/requirements.txt"; then
      log "FAIL  setup: could not install tests/terraform/requirements.txt into $VENV"
      log "0 passed, 1 failed"
      exit 1
    fi
    cp "$HERE/requirements.txt" "$stamp"
  fi
  if ! command -v terraform >/dev/null; then
    log "FAIL  setup: terraform is not on PATH"
    log "0 passed, 1 failed"
    exit 1
  fi
  if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && unshare --net true 2>/dev/null; then
    export SPARKBOOT_TF_ISOLATED=netns
    # shellcheck disable=SC2016 # $0 and $@ belong to the inner bash
    exec unshare --net -- bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
  fi
  # Never unisolated: terraform, checkov and the provider would reach the network if anything
  # were misconfigured.
  log "FAIL  setup: cannot create a network namespace (needs root, iproute2's ip and util-linux's unshare)"
  log "0 passed, 1 failed"
  exit 1
fi

# Past this point nothing needs a proxy: every request goes to 127.0.0.1.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sparkboot-tf.XXXXXX")"
MOTO_PID=""
cleanup() {
  if [ -n "$MOTO_PID" ]; then
    kill "$MOTO_PID" 2>/dev/null
    wait "$MOTO_PID" 2>/dev/null
  fi
  if [ -n "${SPARKBOOT_TF_KEEP:-}" ]; then
    log "kept the working copy, plans and logs in $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PASSED=0
FAILED=0
STEP_NO=0
SUMMARY=()
LAST_SECONDS=0

# step NAME COMMAND...: runs COMMAND with its output in a log, prints PASS/FAIL with the time,
# and the log's tail on failure.
step() {
  local name="$1"
  shift
  STEP_NO=$((STEP_NO + 1))
  local steplog="$WORK/step-$STEP_NO.log"
  local t0 t1 rc
  t0=$(date +%s.%N)
  "$@" >"$steplog" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  report "$name" "$rc" "$steplog" "$t0" "$t1"
}

# step_bg NAME COMMAND... starts a step in the background; step_wait NAME waits for it and
# reports it like `step` (its time is its own wall time, from start to end).
declare -A BG_PID BG_LOG BG_T0
step_bg() {
  local name="$1"
  shift
  STEP_NO=$((STEP_NO + 1))
  local steplog="$WORK/step-$STEP_NO.log"
  BG_LOG[$name]="$steplog"
  BG_T0[$name]=$(date +%s.%N)
  (
    "$@" >"$steplog" 2>&1
    echo $? >"$steplog.rc"
    date +%s.%N >"$steplog.t1"
  ) &
  BG_PID[$name]=$!
}
step_wait() {
  local name="$1" steplog="${BG_LOG[$1]}" rc t1
  wait "${BG_PID[$name]}"
  rc="$(cat "$steplog.rc" 2>/dev/null || echo 99)"
  t1="$(cat "$steplog.t1" 2>/dev/null || date +%s.%N)"
  report "$name" "$rc" "$steplog" "${BG_T0[$name]}" "$t1"
}

report() {
  local name="$1" rc="$2" steplog="$3" t0="$4" t1="$5"
  LAST_SECONDS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  if [ "$rc" = 0 ]; then
    PASSED=$((PASSED + 1))
    log "PASS  $name (${LAST_SECONDS}s)"
    grep -E '^  (tolerated|moto|plan|drift|destroy|checkov|skip|validation|readme|watch|events|toggles|selftest|preconditions|deprecations|upgrade)' "$steplog" | sed 's/^/      /'
  else
    FAILED=$((FAILED + 1))
    log "FAIL  $name (${LAST_SECONDS}s, exit $rc); last lines of its output:"
    sed 's/\x1b\[[0-9;]*m//g' "$steplog" | tail -n 40 | sed 's/^/      | /'
  fi
  SUMMARY+=("$name: ${LAST_SECONDS}s")
  return "$rc"
}

skip_step() {
  FAILED=$((FAILED + 1))
  log "FAIL  $1 (not run: $2)"
}

log "== sparkboot terraform checks (network isolation: $SPARKBOOT_TF_ISOLATED)"

# A working copy, so no .terraform directory, lock file or state lands in the repository.
tar -C "$ROOT" --exclude=.terraform --exclude='.terraform.lock.hcl' --exclude='*.tfstate*' \
  --exclude='*.tfplan' -cf - terraform tests/terraform/invalid_inputs tests/terraform/toggles \
  tests/terraform/preconditions | tar -C "$WORK" -xf - || exit 1
MODULE="$WORK/terraform"
INVALID="$WORK/tests/terraform/invalid_inputs"
TOGGLES="$WORK/tests/terraform/toggles"
PRECONDITIONS="$WORK/tests/terraform/preconditions"
EXAMPLES=(complete private-workers)

# ---------------------------------------------------------------------------------------------
# 1. Formatting, validation, provider compatibility, inputs, README, detectors
# ---------------------------------------------------------------------------------------------
fmt_check() { terraform fmt -check -recursive -diff "$ROOT/terraform" && terraform fmt -check -recursive -diff "$HERE"; }
step "terraform fmt -check -recursive terraform/" fmt_check

# Valid, and without a single warning: a deprecated argument or attribute (against the
# provider in the mirror, 5.100.0) shows up here as a warning.
validate() {
  terraform -chdir="$1" init -backend=false -input=false -no-color || return 1
  terraform -chdir="$1" validate -json -no-color >"$1/validate.json"
  local rc=$?
  "$VENV/bin/python" - "$1/validate.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for d in v.get("diagnostics", []):
    where = (d.get("range") or {}).get("filename", "")
    print(f"  {d['severity']}: {d['summary']}: {d.get('detail', '')[:300]} ({where})")
warnings = [d for d in v.get("diagnostics", []) if d["severity"] == "warning"]
print(f"  validation: {'valid' if v.get('valid') else 'INVALID'}, {len(warnings)} warnings")
sys.exit(0 if v.get("valid") and not warnings else 1)
PY
  [ "$rc" = 0 ] && [ "${PIPESTATUS[0]}" = 0 ]
}
step "terraform validate (module), no warnings" validate "$MODULE"
declare -A EXAMPLE_READY
for ex in "${EXAMPLES[@]}"; do
  step "terraform validate (examples/$ex), no warnings" validate "$MODULE/examples/$ex"
  EXAMPLE_READY[$ex]=$?
done

# Provider 6.x cannot be installed here (only 5.100.0 is in the mirror), so what its upgrade
# guide removes or deprecates, among what this module could plausibly use, is refused by name.
provider6() {
  "$VENV/bin/python" - "$ROOT/terraform" <<'PY'
import pathlib, re, sys
RULES = [
    (r'data\s+"aws_region"', "data.aws_region: 6.x deprecates `name` (and later `id`); `region` does not exist in 5.x"),
    (r"\baws_region\.[a-z_]+(\[[^]]*\])?\.(name|id)\b", "aws_region name/id are deprecated in 6.x"),
    (r"\bcpu_core_count\b|\bcpu_threads_per_core\b", "aws_instance: removed in 6.x (use cpu_options)"),
    (r"\belastic_gpu_specifications\b|\belastic_inference_accelerator\b", "aws_launch_template: removed in 6.x"),
    (r"^\s*vpc\s*=\s*true", "aws_eip: `vpc` removed in 6.x (use domain = \"vpc\")"),
    (r"\bis_enabled\b", "aws_cloudwatch_event_rule: is_enabled is deprecated (use state)"),
    (r"\bmanaged_policy_arns\b|\binline_policy\b", "aws_iam_role: deprecated (use attachments / aws_iam_role_policy)"),
    (r"\bsource_json\b|\boverride_json\b", "aws_iam_policy_document: deprecated"),
    (r"\bs3_us_east_1_regional_endpoint\b", "provider argument deprecated in 6.x, removed in 7.0"),
    (r"\b(opsworks|simpledb|sdb|worklink)\s*=", "provider endpoints removed in 6.x"),
    (r"aws_s3_bucket\.[a-z_]+(\[[^]]*\])?\.region\b", "aws_s3_bucket.region now means the resource's region in 6.x (use bucket_region)"),
    (r"\bmost_recent\s*=\s*true", "data.aws_ami: most_recent needs an owner filter in 6.x (this module filters by image-id only)"),
]
problems = 0
files = sorted(pathlib.Path(sys.argv[1]).rglob("*.tf"))
for f in files:
    if ".terraform" in f.parts:
        continue
    for n, line in enumerate(f.read_text().splitlines(), 1):
        code = line.split("#", 1)[0]
        for rx, why in RULES:
            if re.search(rx, code):
                print(f"  {f.relative_to(sys.argv[1])}:{n}: {why}: {line.strip()}")
                problems += 1
print(f"  deprecations: {len(RULES)} provider 6.x removals/deprecations searched in {len(files)} files, {problems} found")
sys.exit(1 if problems else 0)
PY
}
step "nothing that AWS provider 6.x removes or deprecates" provider6

# Every bad input in the fixture must be refused, each with its own message.
invalid_inputs() {
  terraform -chdir="$INVALID" init -backend=false -input=false -no-color >/dev/null || return 1
  if terraform -chdir="$INVALID" validate -no-color >"$WORK/invalid.out" 2>&1; then
    echo "terraform validate accepted the invalid inputs"
    return 1
  fi
  local text missing=0 expected n=0
  text="$(tr -s ' \n│' '   ' <"$WORK/invalid.out" | tr -s ' ')"
  for expected in \
    "cluster_name must be 2-24 characters" \
    "vpc_id must be a VPC ID" \
    "subnet_ids must list at least one subnet" \
    "admin_cidrs must not contain 0.0.0.0/0" \
    "Every entry of admin_cidrs must be an IPv4 CIDR block written with its network address" \
    "master_instance_type is a previous-generation type" \
    "worker_instance_types must not list the same type twice" \
    "worker_min_size must be a whole number" \
    "worker_max_size must be a whole number" \
    "worker_desired_capacity must be a whole number" \
    "root_volume_type must be one of" \
    "key_name must be null or the name of an existing EC2 key pair" \
    "ssh_user must be a valid login name" \
    'tags must not use the reserved "aws:" key prefix' \
    "Every entry of admin_security_group_ids must be a security group ID" \
    "master_security_group_ids must list at most 4 security group IDs" \
    "worker_security_group_ids must list at most 4 security group IDs" \
    "launch_hook_heartbeat_timeout must be a whole number of seconds from 30 to 7200" \
    "terminate_hook_heartbeat_timeout must be a whole number of seconds from 30 to 7200" \
    "worker_on_demand_base_capacity must be a whole number from 0 to 1000" \
    "worker_on_demand_percentage_above_base_capacity must be a whole number from 0 to 100" \
    "worker_wait_for_capacity_timeout must be null" \
    "node_role_permissions_boundary must be null or an IAM policy ARN" \
    "Every value of node_role_policy_arns must be an IAM policy ARN" \
    'Every extra_egress_rules entry needs protocol "tcp", "udp", "icmp" or "-1"' \
    "extra_egress_rules ports: tcp and udp need whole from_port <= to_port" \
    "Every extra_egress_rules entry needs at least one IPv4 CIDR block" \
    "Every extra_egress_rules entry needs a description of 1-255 characters"; do
    n=$((n + 1))
    if [[ "$text" != *"$expected"* ]]; then
      echo "not refused: $expected"
      missing=$((missing + 1))
    fi
  done
  [ "$missing" = 0 ] && echo "  validation: $n invalid inputs refused, each with its message"
}
step "invalid inputs are refused by the module's validations" invalid_inputs

# The README's Requirements, Providers, Resources, Inputs and Outputs tables are exactly what
# the module's files say (tests/terraform/readme.py --write regenerates them).
readme_tables() { "$VENV/bin/python" "$HERE/readme.py" --check; }
step "terraform/README.md tables match the module (terraform-docs layout)" readme_tables

checks() { "$VENV/bin/python" "$HERE/checks.py" "$@"; }
step "selftest: the detectors catch planted keys, presigned URLs, open policies, real drift" checks selftest

# ---------------------------------------------------------------------------------------------
# 2. checkov
# ---------------------------------------------------------------------------------------------
checkov_run() {
  CKV_SKIP_PACKAGE_UPDATE_CHECK=True BC_SKIP_MAPPING=TRUE \
    "$VENV/bin/checkov" --directory "$ROOT/terraform" --framework terraform --skip-download \
    --output json >"$WORK/checkov.json" 2>"$WORK/checkov.err"
  "$VENV/bin/python" - "$WORK/checkov.json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
reports = data if isinstance(data, list) else [data]
passed = failed = skipped = 0
problems = []
for r in reports:
    s = r.get("summary", {})
    passed += s.get("passed", 0); failed += s.get("failed", 0); skipped += s.get("skipped", 0)
    if s.get("parsing_errors", 0):
        problems.append(f"checkov could not parse {s['parsing_errors']} file(s)")
    res = r.get("results", {})
    for c in res.get("failed_checks", []):
        problems.append(f"FAILED {c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]}): {c['check_name']}")
    for c in res.get("skipped_checks", []):
        reason = (c.get("check_result") or {}).get("suppress_comment", "").strip()
        print(f"  skip {c['check_id']} on {c['resource']}: {reason or '(NO REASON)'}")
        if len(reason) < 20:
            problems.append(f"skip of {c['check_id']} on {c['resource']} has no real reason")
for p in problems:
    print("  " + p)
print(f"  checkov: {passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or problems else 0)
PY
}
step "checkov terraform/: 0 failed, every skip explained" checkov_run

# ---------------------------------------------------------------------------------------------
# 3. Against moto: the switches, the preconditions, then apply and destroy both examples
# ---------------------------------------------------------------------------------------------
REGION="us-east-1"
PORT="$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
ENDPOINT="http://127.0.0.1:$PORT"

# moto loads the AWS managed policies only on request; the private-workers example attaches one.
start_moto() {
  MOTO_IAM_LOAD_MANAGED_POLICIES=true "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
  MOTO_PID=$!
  "$VENV/bin/python" - "$ENDPOINT" <<'PY'
import sys, time, urllib.request
for _ in range(150):
    try:
        urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=1)
        print(f"  moto: up at {sys.argv[1]}")
        sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit(1)
PY
}

# Only moto's dummy credentials, no profile, no instance metadata; every endpoint is moto's.
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION="$REGION"
export AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
export AWS_ENDPOINT_URL="$ENDPOINT"
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE

# The switches and the real-estate inputs, planned: create = false plans nothing, enable_watch =
# false plans no watch resource, each input reaches its resource (checks.py toggles).
toggles() {
  terraform -chdir="$TOGGLES" init -backend=false -input=false -no-color >/dev/null &&
    terraform -chdir="$TOGGLES" plan -no-color -input=false -var "aws_endpoint=$ENDPOINT" -out="$WORK/toggles.tfplan" &&
    terraform -chdir="$TOGGLES" show -json "$WORK/toggles.tfplan" >"$WORK/toggles.json" &&
    checks toggles "$WORK/toggles.json"
}

# Checks of two inputs together are preconditions: the plan must fail, naming each of them.
preconditions() {
  terraform -chdir="$PRECONDITIONS" init -backend=false -input=false -no-color >/dev/null || return 1
  if terraform -chdir="$PRECONDITIONS" plan -no-color -input=false -var "aws_endpoint=$ENDPOINT" >"$WORK/preconditions.out" 2>&1; then
    echo "terraform plan accepted inputs that break the module's preconditions"
    return 1
  fi
  local text missing=0 expected
  text="$(tr -s ' \n│' '   ' <"$WORK/preconditions.out" | tr -s ' ')"
  for expected in \
    "admin_cidrs and admin_security_group_ids together must name 1 to 14 sources" \
    "worker_desired_capacity must lie between worker_min_size and worker_max_size"; do
    if [[ "$text" != *"$expected"* ]]; then
      echo "not refused: $expected"
      missing=$((missing + 1))
    fi
  done
  [ "$missing" = 0 ] || tail -n 30 "$WORK/preconditions.out"
  [ "$missing" = 0 ] && echo "  preconditions: 2 inconsistent input pairs refused at plan time, each with its message"
}

# Both examples against moto, side by side where it saves time: the applies and the destroys
# (mostly waiting on the provider's settle timers) run in parallel, the checks one by one.
tf_ex() {
  local ex="$1"
  shift
  terraform -chdir="$MODULE/examples/$ex" "$@"
}
plan_json() { tf_ex "$1" plan -no-color -input=false -var-file="$WORK/$1.tfvars.json" -out="$WORK/$1-$2.tfplan" && tf_ex "$1" show -json "$WORK/$1-$2.tfplan" >"$WORK/$1-$2.json"; }
apply_plan() { tf_ex "$1" apply -no-color -input=false -auto-approve "$WORK/$1-apply.tfplan"; }
record() { tf_ex "$1" output -json >"$WORK/$1-outputs.json"; }
second_plan() { plan_json "$1" replan && checks drift "$WORK/$1-replan.json"; }
destroy() { tf_ex "$1" destroy -no-color -input=false -auto-approve -var-file="$WORK/$1.tfvars.json"; }

# Upgrading a cluster built by the module's first version (no count): a copy of the example
# whose state is the applied one with that version's addresses, planned without refresh.
upgrade_plan() {
  local up="$MODULE/examples/$1-upgrade"
  rm -rf "$up" && mkdir -p "$up" && cp "$MODULE/examples/$1"/*.tf "$up/" &&
    checks upgrade-state "$MODULE/examples/$1/terraform.tfstate" "$up/terraform.tfstate" &&
    terraform -chdir="$up" init -backend=false -input=false -no-color >/dev/null &&
    terraform -chdir="$up" plan -refresh=false -no-color -input=false -var-file="$WORK/$1.tfvars.json" -out="$WORK/$1-upgrade.tfplan" &&
    terraform -chdir="$up" show -json "$WORK/$1-upgrade.tfplan" >"$WORK/$1-upgrade.json" &&
    checks upgrade "$WORK/$1-upgrade.json"
}

# Per example: cluster name, number of workers, options for `checks.py moto`.
declare -A CLUSTER=([complete]=sb-moto [private-workers]=sb-private)
declare -A WORKERS=([complete]=2 [private-workers]=2)
declare -A SHAPE_OPTS=([complete]="" [private-workers]="--public-master --on-demand-base=1 --worker-groups=2 --master-groups=2")

run_examples() {
  local ex planned=() applied=()
  for ex in "$@"; do
    if step "moto $ex: plan" plan_json "$ex" apply; then
      step "moto $ex: plan's user-data free of keys, secrets and presigned URLs" checks plan "$WORK/$ex-apply.json"
      planned+=("$ex")
    else
      skip_step "moto $ex: apply" "the plan failed"
    fi
  done
  for ex in "${planned[@]}"; do
    step_bg "moto $ex: apply (${WORKERS[$ex]} workers, loopback VPC)" apply_plan "$ex"
  done
  for ex in "${planned[@]}"; do
    if step_wait "moto $ex: apply (${WORKERS[$ex]} workers, loopback VPC)"; then
      APPLY_TIMES+=("$ex ${LAST_SECONDS}s")
      applied+=("$ex")
    fi
  done
  for ex in "${applied[@]}"; do
    # shellcheck disable=SC2086 # SHAPE_OPTS holds several options
    step "moto $ex: cluster shape and stored user-data" \
      checks moto "$ENDPOINT" "$REGION" "${CLUSTER[$ex]}" "${WORKERS[$ex]}" ${SHAPE_OPTS[$ex]}
    if step "moto $ex: outputs recorded" record "$ex"; then
      step "moto $ex: hooks, rules, queue, DLQ and policies" \
        checks watch "$ENDPOINT" "$REGION" "${CLUSTER[$ex]}" "$WORK/$ex-outputs.json" "$WORK/$ex-apply.json"
    fi
    if [ "$ex" = complete ]; then
      step "moto $ex: PutEvents reach the queue through the rules, and only the wanted ones" \
        checks events "$ENDPOINT" "$REGION" "${CLUSTER[$ex]}"
      step "moto $ex: upgrade from the module's first version moves state, replaces nothing" upgrade_plan "$ex"
    fi
    step "moto $ex: second plan changes nothing but known moto quirks" second_plan "$ex"
  done
  # Destroy whatever exists, even after a failed or partial apply.
  local destroying=()
  for ex in "$@"; do
    if [ -s "$MODULE/examples/$ex/terraform.tfstate" ]; then
      step_bg "moto $ex: destroy" destroy "$ex"
      destroying+=("$ex")
    fi
  done
  for ex in "${destroying[@]}"; do
    if step_wait "moto $ex: destroy"; then
      step "moto $ex: nothing left behind" checks gone "$ENDPOINT" "$REGION" "${CLUSTER[$ex]}"
    fi
  done
}

# Loopback VPCs and subnets, so every private address moto hands out is on this machine (moto
# also makes up public addresses for the public master and the NAT gateway: they are only
# reported, never contacted). The AMI is one of moto's built-in images (Amazon Linux 2).
provider_vars='"aws_endpoint": "'"$ENDPOINT"'", "region": "'"$REGION"'",
  "skip_credentials_validation": true, "skip_metadata_api_check": true,
  "skip_requesting_account_id": true, "s3_use_path_style": true,
  "ami_id": "ami-04681a1dbd79675a5", "ssh_user": "ec2-user", "force_destroy": true'
cat >"$WORK/complete.tfvars.json" <<JSON
{
  $provider_vars,
  "cluster_name": "sb-moto",
  "vpc_cidr": "127.100.0.0/16",
  "subnet_cidrs": ["127.100.1.0/24"],
  "admin_cidrs": ["127.0.0.1/32"],
  "associate_public_ip_address": false,
  "expose_spark_ui": true,
  "worker_desired_capacity": 2
}
JSON
cat >"$WORK/private-workers.tfvars.json" <<JSON
{
  $provider_vars,
  "cluster_name": "sb-private",
  "vpc_cidr": "127.101.0.0/16",
  "public_subnet_cidr": "127.101.0.0/24",
  "private_subnet_cidrs": ["127.101.1.0/24", "127.101.2.0/24"],
  "admin_cidrs": ["127.0.0.1/32"],
  "worker_desired_capacity": 2,
  "worker_on_demand_base_capacity": 1,
  "extra_egress_rules": [
    {"description": "NTP to the site time servers", "protocol": "udp", "from_port": 123, "to_port": 123, "cidr_blocks": ["127.101.0.0/16"]}
  ]
}
JSON

APPLY_TIMES=()
if ! step "moto: start server on 127.0.0.1" start_moto; then
  skip_step "moto: plans, applies and destroys" "moto did not start (see $WORK/moto.log)"
else
  step "moto: switches and real-estate inputs plan as intended" toggles
  step "moto: inconsistent inputs are refused at plan time" preconditions
  ready=()
  for ex in "${EXAMPLES[@]}"; do
    if [ "${EXAMPLE_READY[$ex]}" = 0 ]; then
      ready+=("$ex")
    else
      skip_step "moto $ex: plan/apply/destroy" "examples/$ex did not validate"
    fi
  done
  [ "${#ready[@]}" = 0 ] || run_examples "${ready[@]}"
fi

log ""
log "step times: $(IFS=';'; printf '%s' "${SUMMARY[*]}" | sed 's/;/; /g')"
log "moto apply times: ${APPLY_TIMES[*]:-none}"
log "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
