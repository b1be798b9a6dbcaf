"""A small mutation tester: applies one AST mutation at a time to a module and runs a pytest subset.

    python tools/mutate.py bot/jobs/progress.py -- tests/bot/test_runner.py -k progress
    python tools/mutate.py ima/params.py --max 60 --seed 1 -- tests/ima/test_catalog.py

Each mutant is written into a private copy of the project (a temporary folder), never into the working tree,
so other work in the tree is undisturbed; the copy comes first on PYTHONPATH for the test run and any process it
starts. A mutant is killed when the test run fails or exceeds its time limit (3 × the clean run + 10 s). The
clean run must pass first. Docstrings and the text of log calls are not mutated (changing them is equivalent
by construction). Prints one line per survivor (line, what changed) and the score.
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_SKIP_DIRS = {".venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", ".mutants"}
_LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}

_COMPARE_SWAPS = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_BINOP_SWAPS = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.Mult,
    ast.Pow: ast.Mult,
}


def _docstring_nodes(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _log_call_args(tree: ast.AST) -> set[int]:
    """ids of every node inside the arguments of a `log.x(...)`/`logger.x(...)` call."""
    out = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _LOG_METHODS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in {"log", "logger", "_log", "LOG"}
        ):
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                out.update(id(n) for n in ast.walk(arg))
    return out


def _in_fstring(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            out.update(id(n) for n in ast.walk(node) if n is not node)
    return out


def mutation_points(tree: ast.AST) -> list[tuple[int, str, ast.AST]]:
    """Every (line, description, node) that can be mutated, in source order."""
    skip = _docstring_nodes(tree) | _log_call_args(tree) | _in_fstring(tree)
    points: list[tuple[int, str, ast.AST]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in _COMPARE_SWAPS:
                    points.append(
                        (line, f"compare#{i} {type(op).__name__}→{_COMPARE_SWAPS[type(op)].__name__}", node)
                    )
        elif isinstance(node, ast.BoolOp):
            points.append(
                (line, f"{type(node.op).__name__}→{'Or' if isinstance(node.op, ast.And) else 'And'}", node)
            )
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINOP_SWAPS:
            points.append((line, f"{type(node.op).__name__}→{_BINOP_SWAPS[type(node.op)].__name__}", node))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            points.append((line, "drop not", node))
        elif isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool):
                points.append((line, f"{v}→{not v}", node))
            elif isinstance(v, int | float) and not isinstance(v, bool):
                points.append((line, f"{v}→{v + 1}", node))
            elif isinstance(v, str) and v:
                points.append((line, f"{v[:20]!r}→'XX…'", node))
        elif isinstance(node, ast.Return) and node.value is not None:
            points.append((line, "return None", node))
        elif isinstance(node, ast.If):
            points.append((line, "if → if not", node))
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call | ast.Await):
            points.append((line, "drop call statement", node))
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign) and getattr(node, "value", None):
            points.append((line, "drop assignment", node))
    points.sort(key=lambda p: p[0])
    return points


def apply(tree: ast.Module, index: int) -> ast.Module:
    """A copy of tree with mutation number `index` (as listed by mutation_points) applied."""
    mutant = copy.deepcopy(tree)
    _line, desc, node = mutation_points(mutant)[index]
    if isinstance(node, ast.Compare):
        i = int(desc.split("#")[1].split()[0])
        node.ops[i] = _COMPARE_SWAPS[type(node.ops[i])]()
    elif isinstance(node, ast.BoolOp):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif isinstance(node, ast.BinOp):
        node.op = _BINOP_SWAPS[type(node.op)]()
    elif isinstance(node, ast.UnaryOp):
        _replace(mutant, node, node.operand)
    elif isinstance(node, ast.Constant):
        v = node.value
        node.value = (not v) if isinstance(v, bool) else (v + 1 if isinstance(v, int | float) else "XX" + v)
    elif isinstance(node, ast.Return):
        node.value = None
    elif isinstance(node, ast.If):
        node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
    elif isinstance(node, ast.Expr | ast.Assign | ast.AugAssign | ast.AnnAssign):
        _replace(mutant, node, ast.Pass())
    return ast.fix_missing_locations(mutant)


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if item is old:
                        value[i] = new
                        return


def _copy_project(dest: Path) -> None:
    for path in ROOT.iterdir():
        if path.name in _SKIP_DIRS:
            continue
        if path.is_dir():
            shutil.copytree(path, dest / path.name, ignore=shutil.ignore_patterns(*_SKIP_DIRS))
        else:
            shutil.copy2(path, dest / path.name)


def _run(workdir: Path, pytest_args: list[str], timeout: float) -> tuple[bool, float]:
    env = {**os.environ, "PYTHONPATH": str(workdir), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        *pytest_args,
    ]
    start = time.monotonic()
    try:
        done = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return False, time.monotonic() - start
    return done.returncode == 0, time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        print("usage: mutate.py MODULE [--max N] [--seed S] [--lines A-B] -- PYTEST-ARGS...", file=sys.stderr)
        return 2
    split = argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("module")
    parser.add_argument("--max", type=int, default=0, help="test at most N mutants, sampled with --seed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lines", default="", help="only mutants on lines A-B")
    args = parser.parse_args(argv[:split])
    pytest_args = argv[split + 1 :]
    rel = Path(args.module)
    source = (ROOT / rel).read_text(encoding="utf-8")
    tree = ast.parse(source)
    points = mutation_points(tree)
    chosen = list(range(len(points)))
    if args.lines:
        lo, _, hi = args.lines.partition("-")
        chosen = [i for i in chosen if int(lo) <= points[i][0] <= int(hi or lo)]
    if args.max and len(chosen) > args.max:
        chosen = sorted(random.Random(args.seed).sample(chosen, args.max))
    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        work = Path(tmp)
        _copy_project(work)
        target = work / rel
        ok, clean = _run(work, pytest_args, timeout=600)
        if not ok:
            print("the clean run fails: fix the tests (or the subset) first", file=sys.stderr)
            return 2
        limit = 3 * clean + 10
        print(f"{rel}: {len(chosen)} of {len(points)} mutants; clean run {clean:.1f}s", flush=True)
        survivors = []
        for n, i in enumerate(chosen, 1):
            line, desc, _ = points[i]
            try:
                target.write_text(ast.unparse(apply(tree, i)), encoding="utf-8")
            except (ValueError, TypeError, RecursionError):
                continue
            passed, _ = _run(work, pytest_args, timeout=limit)
            if passed:
                survivors.append((line, desc))
                print(f"  SURVIVED line {line}: {desc}", flush=True)
            if n % 20 == 0:
                print(f"  … {n}/{len(chosen)}", flush=True)
        target.write_text(source, encoding="utf-8")
    killed = len(chosen) - len(survivors)
    score = 100.0 * killed / len(chosen) if chosen else 100.0
    print(f"{rel}: killed {killed}/{len(chosen)} ({score:.1f}%), survived {len(survivors)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
