"""The docs' Python examples run, so that they cannot drift from the module:
every ```python block of docs/python.md, in order, in one namespace, and the
README's command in its "From Python" section, each from a scratch directory
that holds examples/ and build/python/ as the reader's checkout does.
Usage: /usr/bin/python3 test_docs.py GRADC ROOT (with PYTHONPATH=build/python)"""

import os
import re
import subprocess

import gradc
from harness import ROOT, SCRATCH, run


def scratch_checkout():
    os.makedirs(os.path.join(SCRATCH, "build"), exist_ok=True)
    for link, target in [("examples", os.path.join(ROOT, "examples")),
                         (os.path.join("build", "python"), os.path.dirname(gradc.__file__))]:
        if not os.path.exists(os.path.join(SCRATCH, link)):
            os.symlink(target, os.path.join(SCRATCH, link))
    os.chdir(SCRATCH)


def test_the_python_page_runs():
    page = open(os.path.join(ROOT, "docs", "python.md")).read()
    blocks = re.findall(r"^```python\n(.*?)^```$", page, flags=re.S | re.M)
    assert len(blocks) >= 2, "docs/python.md has no python examples"
    scratch_checkout()
    namespace = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/python.md block {i + 1}", "exec"), namespace)
    assert os.path.exists("xor.safetensors")



def test_the_readme_command_runs():
    readme = open(os.path.join(ROOT, "README.md")).read()
    section = readme.split("## From Python", 1)[1]
    command = re.search(r"```sh\n(.*?)^```$", section, flags=re.S | re.M).group(1)
    scratch_checkout()
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    loss = float(out.stdout.split()[0])
    assert loss < 0.02 and "(2, 8)" in out.stdout, out.stdout


run(globals())
