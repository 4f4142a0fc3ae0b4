#!/usr/bin/env bash
# Checks of the Terraform module in terraform/, offline:
#   1. terraform fmt -check, and terraform validate of the module and of examples/complete
#   2. checkov on terraform/: 0 failed checks, and every skip carries a reason
#   3. against a local moto server: plan (user-data checked for key material), apply of the
#      example in a loopback VPC (127.100.0.0/16) with 2 spot workers, the resulting cluster's
#      shape, a second plan (only known moto quirks may differ), destroy, nothing left behind.
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
  export SPARKBOOT_TF_ISOLATED=none
  log "note: not root (or no unshare/ip): running without a network namespace; only loopback is used"
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
  LAST_SECONDS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  if [ "$rc" = 0 ]; then
    PASSED=$((PASSED + 1))
    log "PASS  $name (${LAST_SECONDS}s)"
    grep -E '^  (tolerated|moto|plan|drift|destroy|checkov|skip|validation|readme)' "$steplog" | sed 's/^/      /'
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
  --exclude='*.tfplan' -cf - terraform tests/terraform/invalid_inputs | tar -C "$WORK" -xf - || exit 1
MODULE="$WORK/terraform"
EXAMPLE="$MODULE/examples/complete"
INVALID="$WORK/tests/terraform/invalid_inputs"

# ---------------------------------------------------------------------------------------------
# 1. Formatting and validation
# ---------------------------------------------------------------------------------------------
fmt_check() { terraform fmt -check -recursive -diff "$ROOT/terraform" && terraform fmt -check -recursive -diff "$HERE"; }
step "terraform fmt -check -recursive terraform/" fmt_check

validate() { terraform -chdir="$1" init -backend=false -input=false -no-color && terraform -chdir="$1" validate -no-color; }
step "terraform validate (module)" validate "$MODULE"
step "terraform validate (examples/complete)" validate "$EXAMPLE"
EXAMPLE_READY=$?

# Every bad input in the fixture must be refused, each with its own message.
invalid_inputs() {
  terraform -chdir="$INVALID" init -backend=false -input=false -no-color >/dev/null || return 1
  if terraform -chdir="$INVALID" validate -no-color >"$WORK/invalid.out" 2>&1; then
    echo "terraform validate accepted the invalid inputs"
    return 1
  fi
  local text missing=0 expected
  text="$(tr -s ' \n' '  ' <"$WORK/invalid.out")"
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
    'tags must not use the reserved "aws:" key prefix'; do
    if [[ "$text" != *"$expected"* ]]; then
      echo "not refused: $expected"
      missing=$((missing + 1))
    fi
  done
  [ "$missing" = 0 ] && echo "  validation: 14 invalid inputs refused, each with its message"
}
step "invalid inputs are refused by the module's validations" invalid_inputs

# The README's tables must list every input and output of the module.
readme_tables() {
  "$VENV/bin/python" - "$ROOT/terraform" <<'PY'
import re, sys, pathlib
root = pathlib.Path(sys.argv[1])
readme = (root / "README.md").read_text()
missing = []
for kind, fname in (("variable", "variables.tf"), ("output", "outputs.tf")):
    for name in re.findall(rf'^{kind} "([^"]+)"', (root / fname).read_text(), re.M):
        if not re.search(rf"^\| `{re.escape(name)}` \|", readme, re.M):
            missing.append(f"{kind} {name}")
for m in missing:
    print(f"  README.md has no table row for {m}")
print(f"  readme: {'all inputs and outputs documented' if not missing else f'{len(missing)} missing'}")
sys.exit(1 if missing else 0)
PY
}
step "terraform/README.md documents every input and output" readme_tables

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
# 3. Apply and destroy the example against moto
# ---------------------------------------------------------------------------------------------
CLUSTER="sb-moto"
REGION="us-east-1"
WORKERS=2
PORT="$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
ENDPOINT="http://127.0.0.1:$PORT"

start_moto() {
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
  MOTO_PID=$!
  "$VENV/bin/python" - "$ENDPOINT" <<'PY'
import sys, time, urllib.request
for _ in range(100):
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

# Loopback VPC and subnet, so every address moto hands out is on this machine. The AMI is one
# of moto's built-in images (Amazon Linux 2, root device /dev/xvda).
cat >"$WORK/moto.tfvars.json" <<EOF
{
  "aws_endpoint": "$ENDPOINT",
  "region": "$REGION",
  "skip_credentials_validation": true,
  "skip_metadata_api_check": true,
  "skip_requesting_account_id": true,
  "s3_use_path_style": true,
  "cluster_name": "$CLUSTER",
  "vpc_cidr": "127.100.0.0/16",
  "subnet_cidrs": ["127.100.1.0/24"],
  "admin_cidrs": ["127.0.0.1/32"],
  "associate_public_ip_address": false,
  "expose_spark_ui": true,
  "ami_id": "ami-04681a1dbd79675a5",
  "ssh_user": "ec2-user",
  "worker_desired_capacity": $WORKERS,
  "force_destroy": true
}
EOF

tf() { terraform -chdir="$EXAMPLE" "$@"; }
plan_json() { tf plan -no-color -input=false -var-file="$WORK/moto.tfvars.json" -out="$WORK/$1.tfplan" && tf show -json "$WORK/$1.tfplan" >"$WORK/$1.json"; }
apply_plan() { tf apply -no-color -input=false -auto-approve "$WORK/apply.tfplan"; }
destroy() { tf destroy -no-color -input=false -auto-approve -var-file="$WORK/moto.tfvars.json"; }
checks() { "$VENV/bin/python" "$HERE/checks.py" "$@"; }

APPLY_SECONDS="-"
if [ "$EXAMPLE_READY" != 0 ]; then
  for s in "moto: plan" "plan: user-data free of keys and secrets" "moto: apply" \
    "moto: cluster shape and stored user-data" "moto: second plan" "moto: destroy"; do
    skip_step "$s" "examples/complete did not validate"
  done
elif ! step "moto: start server on 127.0.0.1" start_moto; then
  skip_step "moto: plan/apply/destroy" "moto did not start (see $WORK/moto.log)"
else
  if step "moto: plan" plan_json apply; then
    step "plan: user-data free of keys and secrets" checks plan "$WORK/apply.json"
    if step "moto: apply (VPC 127.100.0.0/16, $WORKERS spot workers)" apply_plan; then
      APPLY_SECONDS=$LAST_SECONDS
      step "moto: cluster shape and stored user-data" checks moto "$ENDPOINT" "$REGION" "$CLUSTER" "$WORKERS"
      second_plan() { plan_json replan && checks drift "$WORK/replan.json"; }
      step "moto: second plan changes nothing but known moto quirks" second_plan
    fi
  else
    skip_step "moto: apply" "the plan failed"
  fi
  # Destroy whatever exists, even after a failed or partial apply.
  if [ -s "$EXAMPLE/terraform.tfstate" ]; then
    if step "moto: destroy" destroy; then
      step "moto: nothing left behind" checks gone "$ENDPOINT" "$REGION" "$CLUSTER"
    fi
  fi
fi

log ""
log "step times: $(IFS=';'; printf '%s' "${SUMMARY[*]}" | sed 's/;/; /g')"
log "moto apply time: ${APPLY_SECONDS}s"
log "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
