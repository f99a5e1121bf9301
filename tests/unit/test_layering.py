"""Layering and lint: the pure core stays pure, and the tree is clean."""

import ast
import configparser
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


def _lint_imports(root):
    tool = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) \
        or shutil.which("lint-imports")
    assert tool, "import-linter is a test requirement"
    env = dict(os.environ, PYTHONPATH=root)
    return subprocess.run([tool, "--no-cache"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)


def test_import_contracts_hold():
    """.importlinter: compiler -> model only, model -> nothing of ours, db
    never api, agent never db, quantum_ovs never agent, nothing but tests
    imports tests, no cycles between the parts."""
    out = _lint_imports(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_pure_contracts_name_every_part_of_quantum_ovs():
    """A new module or package under quantum_ovs must be added to the
    forbidden lists of the compiler and model contracts."""
    conf = configparser.ConfigParser()
    conf.read(os.path.join(ROOT, ".importlinter"))
    parts = {f"quantum_ovs.{n.removesuffix('.py')}"
             for n in os.listdir(os.path.join(ROOT, "quantum_ovs"))
             if not n.startswith(("_", ".")) and (n.endswith(".py") or os.path.isfile(
                 os.path.join(ROOT, "quantum_ovs", n, "__init__.py")))}
    for name, own in (("compiler-pure", "quantum_ovs.compiler"),
                      ("model-pure", "quantum_ovs.model")):
        forbidden = set(conf[f"importlinter:contract:{name}"]["forbidden_modules"].split())
        assert parts - {own, "quantum_ovs.model"} <= forbidden, name


def test_a_forbidden_import_breaks_the_contracts(tmp_path):
    """The contracts can fail: a copy of the tree where the compiler
    imports the agent and the agent imports storage."""
    for top in ("quantum_ovs", "agent", "tests", "bench", "tools"):
        shutil.copytree(os.path.join(ROOT, top), tmp_path / top,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(os.path.join(ROOT, ".importlinter"), tmp_path / ".importlinter")
    with open(tmp_path / "quantum_ovs" / "compiler" / "flow.py", "a") as f:
        f.write("\nimport agent.plumbing  # noqa: E402,F401\n")
    with open(tmp_path / "agent" / "reporting.py", "a") as f:
        f.write("\nfrom quantum_ovs.db import models  # noqa: E402,F401\n")
    with open(tmp_path / "quantum_ovs" / "api" / "definitions" / "agents.py", "a") as f:
        f.write("\nfrom quantum_ovs import policy  # noqa: E402,F401\n")
    out = _lint_imports(str(tmp_path))
    assert out.returncode != 0
    assert "The compiler imports only the model (and the standard library) BROKEN" in out.stdout
    assert "The agent never imports storage BROKEN" in out.stdout
    assert "quantum_ovs never imports the agent BROKEN" in out.stdout
    assert "The API definitions are data (no storage, HTTP, config or enforcer) BROKEN" \
        in out.stdout
    assert "quantum_ovs.compiler.flow -> agent.plumbing" in out.stdout
