# The pyinfra side of bench/run: the same work as the sparkboot role
# tests/fixtures/roles/demo/role.toml (and bench/demo.yml for Ansible), step for step, on a fresh
# lab of the same size. bench/run writes the inventory (groups `master` and `workers`, each host
# named as in the lab's inventory.toml with ssh_hostname = its address) and puts the vars of
# bench/sparkboot.toml's [vars] (demo_secret, greeting) into every host's data, so all three
# tools write byte-identical files (bench/run checks that).
#
#   pyinfra -y --parallel N inventory.py bench/demo_pyinfra.py
#
# Written as pyinfra is meant to be used: operations for the file steps (pyinfra compares the
# remote state itself), facts for the guards, and `_if=<op>.did_change` for the restart handler.
from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.facts.server import Command
from pyinfra.operations import files, server

HERE = Path(__file__).resolve().parent
PIDFILE = "/run/demo.pid"

# Same start command, pidfile and command-line match as the role's service step; like sparkboot
# (and bench/demo.yml), wait up to 10 s until the pidfile names a live process.
ALIVE = (
    f'pid=$(cat {PIDFILE} 2>/dev/null); [ -n "$pid" ] && [ -r "/proc/$pid/status" ]'
    " && ! grep -q '^State:[[:space:]]*Z' \"/proc/$pid/status\""
    " && tr '\\0' ' ' < \"/proc/$pid/cmdline\" | grep -qF -- 'sleep 1000000'"
)
START = (
    f"nohup setsid sh -c 'echo $$ > {PIDFILE}; exec sleep 1000000' </dev/null >/dev/null 2>&1 &\n"
    f"i=0; while [ $i -lt 100 ]; do if {ALIVE}; then echo started; exit 0; fi; sleep 0.1; i=$((i+1)); done\n"
    f'echo "started, but {PIDFILE} names no live process after 10s" >&2; exit 1'
)

# The CPU count (what sparkboot's fact probe reports as facts.cpus; Ansible runs `nproc` too).
cpus = host.get_fact(Command, "nproc")

files.directory(
    name="Ensure /opt/demo exists",
    path="/opt/demo",
    user="root",
    group="root",
    mode="755",
)

config = files.template(
    name="Ensure the demo config is written",
    src=str(HERE / "demo_pyinfra.conf.j2"),
    dest="/opt/demo/demo.conf",
    user="root",
    group="root",
    mode="644",
    cpus=cpus,
)

files.put(
    name="Ensure the demo secret is written",
    src=StringIO(host.data.demo_secret + "\n"),
    dest="/opt/demo/secret",
    user="root",
    group="root",
    mode="600",
)

# A guarded command: pyinfra's server.shell always runs, so the guard (`creates`) is a fact.
if not host.get_fact(File, path="/opt/demo/stamp"):
    server.shell(name="Ensure the stamp exists", commands=["date > /opt/demo/stamp"])

# The daemon: started when it is not running; otherwise restarted when the config changed
# (like sparkboot's and Ansible's handler, no restart right after a start).
daemon = host.get_fact(Command, f"if {ALIVE}; then echo running; else echo stopped; fi")
if daemon != "running":
    server.shell(
        name="Ensure the demo daemon is running",
        commands=[f"if {ALIVE}; then echo running; exit 0; fi\n{START}"],
    )
else:
    server.shell(
        name="restart demo",
        commands=[f'kill "$(cat {PIDFILE})" </dev/null >/dev/null 2>&1 || true\n{START}'],
        _if=config.did_change,
    )
