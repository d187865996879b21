"""The layers are a contract, not a habit (docs/architecture.md).

import-linter checks the contracts in pyproject.toml ([tool.importlinter]): chat above rag and
accounts, above connectors, above inference; inference, connectors.sources and
connectors.parsing import no Django. And no module imports, directly or through others, a
module that imports it back (an import cycle), function-local imports included: those are
how a cycle is usually hidden.
"""

from __future__ import annotations

from pathlib import Path

import grimp
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("assistant", "connectors", "inference")


def test_the_import_contracts_hold(capsys):
    exit_code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    report = capsys.readouterr().out
    assert exit_code == 0, report[report.find("Broken contracts"):] or report


def _cycles(graph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]

    def visit(module: str) -> None:
        index[module] = low[module] = counter[0]
        counter[0] += 1
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles():
    cycles = _cycles(grimp.build_graph(*PACKAGES))
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)
