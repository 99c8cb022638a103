"""The import direction of docs/architecture.md §4: each layer imports only from layers below it."""
import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)

PACKAGE = Path(__file__).resolve().parents[2] / "jetmq"

#: Lower ranks are more basic; a module may import only modules of a lower rank,
#: or modules of its own subpackage. master and member share a rank: they are peers
#: and must not import each other.
RANKS = {
    "version": 0, "errors": 0,
    "names": 0.5, "netaddr": 0.5, "restart_strategy": 0.5, "config": 1, "ids": 1, "formatting": 1, "logs": 1, "testing": 3, "serialization": 1, "job_status": 1,
    "core": 2,
    "pipeline": 3,
    "protocol": 4,
    "transport": 5, "clusterkey": 5.5,
    "requester": 6, "storage": 6.5,
    "master": 7, "member": 7,
    "job": 8, "observable": 8,
    "bootstrap": 10.5,
    "client": 9,
    "embedded": 10,
    "web": 10.8,
    "cli": 11,
    "__init__": 12, "__main__": 12,
}


def _layer(module: str) -> str:
    """'jetmq.master.server' -> 'master'; 'jetmq' -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "jetmq"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "jetmq":
            if node.module == "jetmq":
                found += [f"jetmq.{alias.name}" for alias in node.names]
            else:
                found.append(node.module)
    return found


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        yield ".".join(relative.parts), path


@pytest.mark.parametrize("module,path", list(_modules()), ids=lambda v: str(v) if isinstance(v, str) else "")
def test_module_imports_only_lower_layers(module, path):
    source = _layer(module)
    assert source in RANKS, f"{module}: layer '{source}' is not in the layer table"
    for imported in _imports(path):
        target = _layer(imported)
        assert target in RANKS, f"{module} imports {imported}: layer '{target}' is not in the layer table"
        if target == source:
            continue
        assert RANKS[target] < RANKS[source], (
            f"{module} (layer {source}, rank {RANKS[source]}) imports {imported} "
            f"(layer {target}, rank {RANKS[target]}): imports must point to lower layers")


def test_only_transport_imports_zmq():
    # jetmq.transport and its modules hold every socket; nothing else may touch zmq
    for module, path in _modules():
        if module == "jetmq.transport" or module.startswith("jetmq.transport."):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "zmq" for n in names), f"{module} imports zmq"
