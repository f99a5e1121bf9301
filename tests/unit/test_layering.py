"""Layering and lint: the pure core stays pure, and the tree is clean."""

import ast
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PURE = {"quantum_ovs/compiler": ("quantum_ovs.compiler", "quantum_ovs.model"),
        "quantum_ovs/model.py": ("quantum_ovs.model",),
        "quantum_ovs/wire.py": ("quantum_ovs.model", "quantum_ovs.wire")}
STDLIB = set(sys.stdlib_module_names)


def _imports(path):
    tree = ast.parse(open(path).read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


def test_compiler_and_model_import_no_io():
    bad = []
    for rel, allowed in PURE.items():
        base = os.path.join(ROOT, rel)
        files = [base] if base.endswith(".py") else [
            os.path.join(d, f) for d, _, fs in os.walk(base) for f in fs if f.endswith(".py")]
        for path in files:
            for mod in _imports(path):
                top = mod.split(".")[0]
                if top in STDLIB and top not in ("socket", "subprocess", "asyncio", "select"):
                    continue
                if mod == "quantum_ovs" or any(mod == a or mod.startswith(a + ".")
                                               for a in allowed):
                    continue
                bad.append(f"{os.path.relpath(path, ROOT)} imports {mod}")
    assert bad == []


def test_only_the_server_entry_point_imports_eventlet():
    users = []
    for top in ("quantum_ovs", "agent"):
        for d, _, fs in os.walk(os.path.join(ROOT, top)):
            for f in fs:
                if f.endswith(".py"):
                    path = os.path.join(d, f)
                    if any(m.split(".")[0] == "eventlet" for m in _imports(path)):
                        users.append(os.path.relpath(path, ROOT))
    assert users == ["quantum_ovs/cmd/server.py"]


def test_ruff_is_clean():
    ruff = shutil.which("ruff", path=os.path.dirname(sys.executable)) or shutil.which("ruff")
    assert ruff, "ruff is a test requirement"
    out = subprocess.run([ruff, "check", "quantum_ovs", "agent", "tests", "bench", "tools"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
