#!/usr/bin/env python3
"""The reference tables of terraform/README.md, in terraform-docs layout (Requirements,
Providers, Modules, Resources, Inputs, Outputs), generated from the module's own *.tf files.

  readme.py --check   exit 1, with a diff, when the README's block between the
                      <!-- BEGIN_TF_DOCS --> and <!-- END_TF_DOCS --> markers is not exactly
                      what the module's variables, outputs, resources and versions say
  readme.py --write   rewrite that block in place

Inputs and outputs keep the order of variables.tf and outputs.tf (grouped by topic there);
resources are sorted by address. Descriptions are the `description` strings themselves, so the
README cannot drift from `terraform-docs` or from what `terraform console` shows.

Needs the `hcl2` package (bc-python-hcl2, a checkov dependency in the test venv).
"""

import difflib
import json
import pathlib
import re
import sys

import hcl2

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODULE = ROOT / "terraform"
README = MODULE / "README.md"
BEGIN, END = "<!-- BEGIN_TF_DOCS -->", "<!-- END_TF_DOCS -->"
REGISTRY = "https://registry.terraform.io/providers/hashicorp/aws/latest/docs"


def first(v):
    return v[0] if isinstance(v, list) and len(v) == 1 else v


def unescape(s):
    """hcl2 keeps HCL escapes in strings; undo the ones the module's descriptions use."""
    return s.replace('\\"', '"').replace("\\\\", "\\")


def render_type(t):
    """`${list(object({'a': '${string}'}))}` (hcl2's form) back to `list(object({a = string}))`."""
    t = first(t)
    t = re.sub(r"^\$\{(.*)\}$", r"\1", t, flags=re.S)
    t = re.sub(r"'([A-Za-z0-9_-]+)': '\$\{(.*?)\}'", r"\1 = \2", t)
    return t


def render_default(v):
    if isinstance(v, str):
        return json.dumps(unescape(v))
    return json.dumps(v)


def cell(text):
    """A table cell: one line, `|` escaped, and `<...>` outside code spans escaped so a
    Markdown renderer does not take it for an HTML tag."""
    text = " ".join(text.split()).replace("|", "\\|")
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # even parts are outside code spans
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def code(text):
    return f"`{text}`".replace("|", "\\|")


def load(path):
    with open(path) as f:
        return hcl2.load(f)


def generate():
    files = sorted(MODULE.glob("*.tf"))
    parsed = {p.name: load(p) for p in files}

    versions = {}
    for d in parsed.values():
        for block in d.get("terraform", []):
            if "required_version" in block:
                versions["terraform"] = first(block["required_version"])
            for rp in block.get("required_providers", []):
                for name, spec in rp.items():
                    versions[name] = first(spec)["version"]

    lines = ["## Requirements", "", "| Name | Version |", "|------|---------|"]
    for name in sorted(versions, key=lambda n: (n != "terraform", n)):
        lines.append(f"| {name} | {code(versions[name])} |")
    lines += ["", "## Providers", "", "| Name | Version |", "|------|---------|"]
    for name in sorted(n for n in versions if n != "terraform"):
        lines.append(f"| {name} | {code(versions[name])} |")
    lines += ["", "## Modules", "", "No modules.", ""]

    resources = []
    for fname, d in parsed.items():
        for kind, mode in (("resource", "resource"), ("data", "data source")):
            for block in d.get(kind, []):
                for rtype, named in block.items():
                    for name in named:
                        page = "resources" if kind == "resource" else "data-sources"
                        short = rtype[len("aws_"):] if rtype.startswith("aws_") else rtype
                        addr = f"{'data.' if kind == 'data' else ''}{rtype}.{name}"
                        resources.append((addr, f"| [{addr}]({REGISTRY}/{page}/{short}) | {mode} | `{fname}` |"))
    lines += ["## Resources", "", "| Name | Type | File |", "|------|------|------|"]
    lines += [row for _, row in sorted(resources)]

    lines += ["", "## Inputs", "", "| Name | Description | Type | Default | Required |",
              "|------|-------------|------|---------|:--------:|"]
    for block in parsed["variables.tf"].get("variable", []):
        for name, v in block.items():
            desc = unescape(first(v.get("description", "")))
            typ = render_type(v.get("type", "any"))
            required = "default" not in v
            default = "n/a" if required else code(render_default(first(v["default"])))
            lines.append(f"| {code(name)} | {cell(desc)} | {code(typ)} | {default} | {'yes' if required else 'no'} |")

    lines += ["", "## Outputs", "", "| Name | Description |", "|------|-------------|"]
    for block in parsed["outputs.tf"].get("output", []):
        for name, o in block.items():
            lines.append(f"| {code(name)} | {cell(unescape(first(o.get('description', ''))))} |")
    return "\n".join(lines) + "\n"


def split_readme(text):
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise SystemExit(f"{README}: needs exactly one {BEGIN} ... {END} block")
    head, rest = text.split(BEGIN, 1)
    body, tail = rest.split(END, 1)
    return head, body, tail


def main(argv):
    if argv not in (["--check"], ["--write"]):
        print(__doc__, file=sys.stderr)
        return 2
    text = README.read_text()
    head, body, tail = split_readme(text)
    want = "\n" + generate()
    if argv == ["--write"]:
        README.write_text(head + BEGIN + want + END + tail)
        print(f"  readme: wrote the tables of {README.relative_to(ROOT)}")
        return 0
    if body == want:
        n_in = want.count("\n| `", want.index("## Inputs"), want.index("## Outputs"))
        n_out = want.count("\n| `", want.index("## Outputs"))
        n_res = want.count("\n| [", want.index("## Resources"), want.index("## Inputs"))
        print(f"  readme: Requirements, Providers, {n_res} resources, {n_in} inputs and {n_out} outputs match the module")
        return 0
    diff = list(difflib.unified_diff(body.splitlines(), want.splitlines(), "README.md", "generated", lineterm="", n=0))
    for line in diff[:60]:
        print(f"  {line[:220]}")
    print("  readme: terraform/README.md's tables differ from the module; run "
          "tests/terraform/readme.py --write (with the test venv's python) and review the diff")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
