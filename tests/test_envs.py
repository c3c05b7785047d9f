"""Offline checks of the conda environments (conda itself is not reachable here).

For every rule: it names a conda env; the env file parses, pins every package,
and lists every third-party package that the rule's script imports, directly
or through the generain functions it calls (module-level imports of every
generain module reached, plus imports inside the functions reached). The
versions installed in this test environment must satisfy the env pins.

Limits of the static analysis: calls through dispatch tables or callbacks are
not followed, so package modules import their dependencies at module level
and keep function-level imports for what only some rules need (torch,
lightning, mygene).
"""
from __future__ import annotations

import ast
import functools
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "src" / "generain"

# import name -> conda package name
CONDA_NAME = {"requests": "requests", "torch": "pytorch", "sklearn": "scikit-learn", "yaml": "pyyaml", "matplotlib": "matplotlib-base",
              "lightning": "lightning", "pyarrow": "pyarrow", "h5py": "h5py", "numpy": "numpy",
              "pandas": "pandas", "scipy": "scipy", "anndata": "anndata", "joblib": "joblib", "tqdm": "tqdm",
              "mygene": "mygene", "isal": "python-isal"}
# conda package name -> installed distribution name
DIST_NAME = {"pytorch": "torch", "matplotlib-base": "matplotlib", "python-isal": "isal"}
STDLIB = set(sys.stdlib_module_names)


def _rules() -> dict[str, dict[str, str]]:
    """rule name -> {"env": path, "script": path} parsed from rules/*.smk."""
    envs = dict(re.findall(r'^(ENV_\w+) = "\.\./(envs/[\w.]+)"', (REPO / "rules" / "common.smk").read_text(), re.M))
    out = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for name, body in re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", smk.read_text(), re.M):
            env = re.search(r"conda:\s*\n\s*(ENV_\w+)", body)
            script = re.search(r'script:\s*\n\s*"\.\./(workflow_scripts/[\w.]+)"', body)
            out[name] = {"env": envs[env.group(1)] if env else None, "script": script.group(1) if script else None}
    return out


@functools.lru_cache(maxsize=None)
def _tree(module: str) -> ast.Module:
    return ast.parse((PKG / f"{module}.py").read_text())


def _imports(nodes: list[ast.stmt] | ast.AST, current: str | None) -> tuple[set[str], set[str]]:
    """Third-party top-level names and generain modules imported by these nodes."""
    third, internal = set(), set()
    for node in ast.walk(nodes) if isinstance(nodes, ast.AST) else [n for s in nodes for n in ast.walk(s)]:
        if isinstance(node, ast.Import):
            for a in node.names:
                top = a.name.split(".")[0]
                (internal.add(a.name.split(".")[1]) if top == "generain" and "." in a.name else third.add(top))
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level or mod.split(".")[0] == "generain":
                sub = mod.split(".", 1)[1] if mod.startswith("generain.") else (mod if node.level else "")
                if sub:
                    internal.add(sub.split(".")[0])
                else:
                    internal.update(a.name for a in node.names)
            else:
                third.add(mod.split(".")[0])
    third -= STDLIB | {"generain", "__future__"}
    return third, {m for m in internal if (PKG / f"{m}.py").exists()}


def _module_level(module: str, seen: set[str]) -> set[str]:
    if module in seen:
        return set()
    seen.add(module)
    body = [s for s in _tree(module).body if isinstance(s, (ast.Import, ast.ImportFrom))]
    third, internal = _imports(body, module)
    for m in internal | ({"__init__"} if module != "__init__" else set()):
        third |= _module_level(m, seen)
    return third


def _function_imports(module: str, func: str, seen: set[tuple[str, str]]) -> set[str]:
    """Imports inside ``module.func`` and inside the generain functions it calls."""
    if (module, func) in seen:
        return set()
    seen.add((module, func))
    tree = _tree(module)
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == func), None)
    if fn is None:
        return set()
    third, internal = _imports(fn, module)
    for m in internal:
        third |= _module_level(m, set())
    aliases = {m: m for m in _imports([s for s in tree.body if isinstance(s, ast.ImportFrom)], module)[1]}
    # every reference to a generain function, called or not (readers = {"h5ad": read_h5ad} is a later call)
    for node in ast.walk(fn):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            third |= _function_imports(aliases[node.value.id], node.attr, seen)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            third |= _function_imports(module, node.id, seen)
    return third


def script_requirements(script: Path) -> set[str]:
    """Conda package names a workflow script needs."""
    tree = ast.parse(script.read_text())
    third, internal = _imports(tree, None)
    for m in internal:
        third |= _module_level(m, set())
    for node in ast.walk(tree):  # pipeline.func(...) or a function passed to run_step
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in internal:
            third |= _function_imports(node.value.id, node.attr, set())
    unknown = third - set(CONDA_NAME)
    assert not unknown, f"{script.name}: add a conda name for import(s) {sorted(unknown)} to CONDA_NAME"
    return {CONDA_NAME[t] for t in third}


def _env(path: str) -> dict[str, str]:
    doc = yaml.safe_load((REPO / path).read_text())
    assert doc["channels"][0] == "conda-forge", path
    pins = {}
    for dep in doc["dependencies"]:
        if isinstance(dep, dict):
            assert dep == {"pip": ["-e ../"]}, f"{path}: unexpected pip section {dep}"
            continue
        name, _, version = dep.partition("=")
        pins[name] = version
    return pins


RULES = _rules()


def test_every_rule_that_runs_code_has_an_env():
    assert len(RULES) >= 14
    for name, r in RULES.items():
        assert r["script"], f"rule {name} has no script"
        assert r["env"], f"rule {name} has no conda: directive"


@pytest.mark.parametrize("rule", sorted(RULES))
def test_env_lists_every_package_the_rule_imports(rule):
    r = RULES[rule]
    pins = _env(r["env"])
    need = script_requirements(REPO / r["script"])
    assert need, f"{rule}: found no imports (the analysis is broken)"
    missing = need - set(pins)
    assert not missing, f"rule {rule} ({r['script']}) imports {sorted(missing)}, not in {r['env']}"


def test_requirements_analysis_follows_lazy_imports():
    assert "pytorch" in script_requirements(REPO / "workflow_scripts" / "train_model.py")
    assert "mygene" in script_requirements(REPO / "workflow_scripts" / "refresh_gene_table.py")
    assert "pytorch" not in script_requirements(REPO / "workflow_scripts" / "normalize_counts.py")
    assert "anndata" in script_requirements(REPO / "workflow_scripts" / "ingest_counts.py")


@pytest.mark.parametrize("env", sorted(p.name for p in (REPO / "envs").glob("*.yaml")))
def test_env_pins_match_the_tested_versions(env):
    pins = _env(f"envs/{env}")
    for name, version in pins.items():
        if name == "pip":  # the installer of the package itself
            continue
        assert version, f"{env}: {name} is not pinned"
        if name == "python":
            assert f"{sys.version_info.major}.{sys.version_info.minor}" == version
            continue
        installed = metadata.version(DIST_NAME.get(name, name))
        assert (installed + ".").startswith(version + "."), f"{env}: {name}={version} but tests run {installed}"
