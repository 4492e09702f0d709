"""The package's import graph: layers import downward only, and no module reaches itself through its imports.

Every `import` is counted, at module level or inside a function: a deferred import is still a dependency.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "recbole_srt"

# Lowest first. A module may import from its own layer or any layer below, never above.
LAYERS = {
    "foundation": ["registry", "compat", "machine", "run_log", "lr_schedule", "distributed", "architectures",
                   "random_state", "checkpoint", "hashing", "figure_provenance"],
    "config": ["config", "setting_checks"],
    "components": ["data", "model", "evaluation", "transfer", "acceleration", "scaling.flops", "scaling.laws",
                   "scaling.records"],
    "trainer": ["trainer"],
    "entry points": ["quick_start", "recommend", "cli", "upgrade_checkpoint", "scaling.sweep", "scaling.report",
                     "scaling.__main__", "__init__"],
}


def modules():
    """Module name (relative to the package; a package is `name.__init__`) -> path."""
    return {".".join(path.relative_to(PACKAGE).with_suffix("").parts): path for path in PACKAGE.rglob("*.py")}


def layer_of(module):
    module = module.removesuffix(".__init__")
    for rank, prefixes in enumerate(LAYERS.values()):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"recbole_srt.{module} belongs to no layer: add it to LAYERS in {__file__}")


def resolve(name, known):
    """The known module a dotted name refers to (a package's __init__), or None."""
    name = name[len("recbole_srt."):] if name.startswith("recbole_srt.") else "" if name == "recbole_srt" else None
    if name is None:
        return None
    for candidate in (name, f"{name}.__init__" if name else "__init__"):
        if candidate in known:
            return candidate
    return None


def imports(path, known):
    """The package modules `path` imports: `from recbole_srt.a import b` counts module a.b if b is a module, else a."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [resolve(alias.name, known) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [resolve(f"{node.module}.{alias.name}", known) or resolve(node.module, known)
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t)
    return found


def graph():
    known = modules()
    return {module: imports(path, known) - {module} for module, path in known.items()}


def test_every_import_goes_down_or_sideways():
    upward = [f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
              for module, targets in graph().items() for target in targets if layer_of(target) > layer_of(module)]
    assert not upward, "\n".join(upward)


def test_no_import_circle():
    # The package's own __init__ is the public API on top (it imports the quick start): left out of the circles.
    edges = {m: targets - {"__init__"} for m, targets in graph().items() if m != "__init__"}
    state, circles = {}, []

    def visit(module, path):
        state[module] = "open"
        for target in sorted(edges.get(module, ())):
            if state.get(target) == "open":
                circles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not circles, "\n".join(circles)


def test_the_checker_sees_a_deferred_upward_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from recbole_srt.quick_start import load_data_and_model\n")
    assert imports(module, modules()) == {"quick_start"}


def test_the_layout_page_names_every_module_in_its_layer():
    rows = {line.split("|")[1].strip(): line for line in
            (PACKAGE.parent / "docs" / "layout.md").read_text().splitlines() if line.startswith("| ")}
    missing = []
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            path = prefix.replace(".", "/")
            name = f"`{path}/`" if (PACKAGE / path).is_dir() else f"`{path}.py`"
            if name not in rows.get(layer, ""):
                missing.append(f"{name} (layer {layer})")
    assert not missing, "docs/layout.md's layer table lacks " + ", ".join(missing)
