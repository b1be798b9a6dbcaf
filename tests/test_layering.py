"""The dependency rules of shared/architecture.md, enforced by walking every import."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STDLIB = __import__("sys").stdlib_module_names

# (package prefix, allowed import roots besides the stdlib)
RULES: list[tuple[str, set[str]]] = [
    ("ima", {"ima", "aiohttp", "yarl", "multidict"}),
    ("bot.core", {"bot.core", "ima.models"}),
    ("bot.parsing", {"bot.parsing", "bot.core", "ima.models", "yaml", "rapidfuzz"}),
    ("bot.jobs", {"bot.jobs", "bot.core", "bot.media", "ima", "yaml", "aiosqlite", "asyncpg"}),
    ("bot.media", {"bot.media", "bot.core.errors", "bot.core", "av"}),
    ("bot.adapters.discord", {"bot.adapters.discord", "bot.core", "discord", "aiohttp", "yarl"}),
    ("bot.adapters.feishu", {"bot.adapters.feishu", "bot.core", "lark_oapi", "aiohttp", "yarl", "Crypto"}),
    ("bot.adapters.console", {"bot.adapters.console", "bot.adapters.console_input", "bot.core"}),
    ("bot.adapters.console_input", {"bot.core"}),
]
# Only the composition root and the entry point may wire concrete adapters.
WIRING = {"bot.app", "bot.__main__"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            out.append(name)
            # `from pkg import submodule` is an import of the submodule too.
            out.extend(f"{name}.{a.name}" for a in node.names)
    return out


def _allowed(name: str, allowed: set[str]) -> bool:
    root = name.split(".")[0]
    if root in STDLIB or root == "__future__":
        return True
    return any(
        name == a or name.startswith(a + ".") or a.startswith(name + ".") or a == name for a in allowed
    )


def _violations() -> list[str]:
    problems = []
    for pkg in ("ima", "bot"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            module = _module_name(path)
            for prefix, allowed in RULES:
                if module == prefix or module.startswith(prefix + "."):
                    for name in _imports(path, module):
                        if not _allowed(name, allowed):
                            problems.append(f"{module} imports {name}")
            if module not in WIRING and not module.startswith("bot.adapters"):
                for name in _imports(path, module):
                    if name.startswith("bot.adapters."):
                        problems.append(f"{module} wires an adapter ({name}); only {sorted(WIRING)} may")
    return problems


def test_dependency_rules_hold() -> None:
    assert _violations() == []


def test_the_walker_sees_a_violation(tmp_path: Path) -> None:
    # A rule test that cannot fail proves nothing: check the walker flags a forbidden import.
    bad = ROOT / "bot" / "core" / "_layering_probe.py"
    bad.write_text("import discord\nfrom bot.jobs import model\n", encoding="utf-8")
    try:
        found = _violations()
    finally:
        bad.unlink()
    assert "bot.core._layering_probe imports discord" in found
    assert any(v.startswith("bot.core._layering_probe imports bot.jobs") for v in found)
