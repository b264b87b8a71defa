"""The layout README's "Layout" section promises: imports only go down the layers, no source file passes
350 lines."""
import ast
import glob
import os

from conftest import ROOT

# Bottom to top; a module may import its own layer and those below it.
LAYERS = [("common.errors", "common.io"), ("common.envs",), ("common.data",), ("common.learning",),
          ("common.training",), ("utils",), ("discrete_SQV", "continuous_BCQ"), ("common.reporting",)]


def layer_of(module: str) -> int | None:
    for level, names in enumerate(LAYERS):
        if any(module == name or module.startswith(name + ".") for name in names):
            return level
    return None


def imports(path: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(open(path).read())):  # function-level (lazy) imports count too
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def sources() -> list[str]:
    paths = [p for pattern in ("common/**/*.py", "discrete_SQV/*.py", "continuous_BCQ/*.py", "*.py", "tests/**/*.py")
             for p in glob.glob(os.path.join(ROOT, pattern), recursive=True)]
    return sorted({p for p in paths if "/.venv/" not in p and "/study" not in p})


def test_imports_only_go_down_the_layers():
    upward = []
    for path in sources():
        module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
        own = layer_of(module)
        if own is None:  # the scripts and tests stand above every layer
            continue
        for imported in imports(path):
            level = layer_of(imported)
            if level is not None and level > own:
                upward.append(f"{module} imports {imported}")
    assert upward == []


def test_the_layer_check_sees_an_upward_import():
    assert layer_of("common.envs.make") < layer_of("common.data.buffers") < layer_of("common.training.stages")
    assert layer_of("common.reporting.export") > layer_of("discrete_SQV.bcq")
    assert layer_of("plot") is None


def test_no_source_file_passes_350_lines():
    long = [f"{os.path.relpath(p, ROOT)}: {n}" for p in sources() if (n := sum(1 for _ in open(p))) > 350]
    assert long == []
