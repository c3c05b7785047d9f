"""Offline checks of the conda environments (conda itself is not reachable here).

For every rule: it names a conda env; the env file parses, pins every package,
and lists every third-party package that the rule's script imports, directly
or through the generain functions it calls (module-level imports of every
generain module reached, plus imports inside the functions reached). The
versions installed in this test environment must satisfy the env pins.

Modules are followed through the subpackages (``generain.stages``,
``generain.training``) and through names imported from them. Limits of the
static analysis: calls through dispatch tables or callbacks are not
followed, so modules import their dependencies at module level and keep
function-level imports for what only some rules need (mygene, anndata).
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
              "mygene": "mygene", "isal": "python-isal", "pysam": "pysam", "polars": "polars",
              "safetensors": "safetensors", "numba": "numba"}
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
            shell = re.search(r'shell:\s*\n\s*"(\w+)', body)
            out[name] = {"env": envs[env.group(1)] if env else None, "script": script.group(1) if script else None,
                         "program": shell.group(1) if shell else None}
    return out


def _path(module: str) -> Path:
    """The file of a generain module given relative to the package ("io", "stages.sweep", "training")."""
    p = PKG / module.replace(".", "/")
    return p / "__init__.py" if p.is_dir() else p.with_suffix(".py")


def _is_module(module: str) -> bool:
    return bool(module) and _path(module).exists()


@functools.lru_cache(maxsize=None)
def _tree(module: str) -> ast.Module:
    return ast.parse(_path(module).read_text())


def _bindings(nodes: list[ast.stmt] | ast.AST, current: str | None) -> tuple[set[str], dict[str, tuple[str, str | None]]]:
    """Third-party top-level names imported by these nodes, and the generain names they bind.

    ``current`` is the module the nodes are in (None for a workflow script).
    Bound names map to (module, None) for a module and (module, attr) for a
    function or class of a module.
    """
    third: set[str] = set()
    bound: dict[str, tuple[str, str | None]] = {}
    package = None
    if current is not None:
        package = current if (PKG / current.replace(".", "/")).is_dir() else current.rpartition(".")[0]
    for node in ast.walk(nodes) if isinstance(nodes, ast.AST) else [n for s in nodes for n in ast.walk(s)]:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "generain":
                    sub = a.name.partition(".")[2]
                    if sub:
                        bound[a.asname or sub] = (sub, None)
                else:
                    third.add(a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                base = package or ""
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                target = ".".join(p for p in (base, mod) if p)
            elif mod.split(".")[0] == "generain":
                target = mod.partition(".")[2]
            else:
                third.add(mod.split(".")[0])
                continue
            for a in node.names:
                sub = ".".join(p for p in (target, a.name) if p)
                if _is_module(sub):
                    bound[a.asname or a.name] = (sub, None)
                else:
                    bound[a.asname or a.name] = (target or "__init__", a.name)
    third -= STDLIB | {"generain", "__future__"}
    return third, bound


def _module_level(module: str, seen: set[str]) -> set[str]:
    """Third-party imports run when ``module`` is imported: its own, its packages' and its generain imports'."""
    if module in seen:
        return set()
    seen.add(module)
    body = [s for s in _tree(module).body if isinstance(s, (ast.Import, ast.ImportFrom))]
    third, bound = _bindings(body, module)
    parents = {module.rpartition(".")[0] or "__init__"} if module != "__init__" else set()
    for m in {m for m, _ in bound.values()} | parents:
        third |= _module_level(m, seen)
    return third


def _function_imports(module: str, func: str, seen: set[tuple[str, str]]) -> set[str]:
    """Imports inside ``module.func`` and inside the generain functions it refers to."""
    if (module, func) in seen:
        return set()
    seen.add((module, func))
    tree = _tree(module)
    fn = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == func), None)
    if fn is None:
        return set()
    third, inner = _bindings(fn, module)
    for m, _ in inner.values():
        third |= _module_level(m, set())
    bound = {**_bindings([s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))], module)[1], **inner}
    # every reference to a generain function, called or not (readers = {"h5ad": read_h5ad} is a later call)
    for node in ast.walk(fn):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound:
            target, attr = bound[node.value.id]
            if attr is None:
                third |= _function_imports(target, node.attr, seen)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            target, attr = bound.get(node.id, (module, node.id))
            if attr is not None:
                third |= _function_imports(target, attr, seen)
    return third


def script_requirements(script: Path) -> set[str]:
    """Conda package names a workflow script needs."""
    tree = ast.parse(script.read_text())
    third, bound = _bindings(tree, None)
    for m, _ in bound.values():
        third |= _module_level(m, set())
    for node in ast.walk(tree):  # stage.func passed to run_step, or a generain name called
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound:
            target, attr = bound[node.value.id]
            if attr is None:
                third |= _function_imports(target, node.attr, set())
        elif isinstance(node, ast.Name) and node.id in bound and bound[node.id][1] is not None:
            third |= _function_imports(*bound[node.id], set())
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


# programs of shell rules that are not Python distributions: the env pins them, these tests run Debian's
TOOLS = {"kallisto": "0.48.0"}


def test_every_rule_that_runs_code_has_an_env():
    assert len(RULES) >= 14
    for name, r in RULES.items():
        assert r["script"] or r["program"], f"rule {name} has neither a script nor a shell command"
        assert r["env"], f"rule {name} has no conda: directive"
        if r["program"]:  # a shell rule's program is pinned in its env
            assert r["program"] in _env(r["env"]), f"rule {name} runs {r['program']}, not in {r['env']}"


@pytest.mark.parametrize("rule", sorted(n for n, r in RULES.items() if r["script"]))
def test_env_lists_every_package_the_rule_imports(rule):
    r = RULES[rule]
    pins = _env(r["env"])
    need = script_requirements(REPO / r["script"])
    assert need, f"{rule}: found no imports (the analysis is broken)"
    missing = need - set(pins)
    assert not missing, f"rule {rule} ({r['script']}) imports {sorted(missing)}, not in {r['env']}"


def test_requirements_analysis_follows_lazy_imports():
    assert {"pytorch", "lightning"} <= script_requirements(REPO / "workflow_scripts" / "train_model.py")
    # the stages that only read a trained model load it with torch alone (generain.training.checkpoint)
    assert "pytorch" in script_requirements(REPO / "workflow_scripts" / "export_embeddings.py")
    assert "lightning" not in script_requirements(REPO / "workflow_scripts" / "export_embeddings.py")
    assert "lightning" not in script_requirements(REPO / "workflow_scripts" / "align_species.py")
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
        if name in TOOLS:
            assert TOOLS[name] == version, f"{env}: {name}={version} but tests run {TOOLS[name]}"
            continue
        installed = metadata.version(DIST_NAME.get(name, name))
        assert (installed + ".").startswith(version + "."), f"{env}: {name}={version} but tests run {installed}"
