"""The docs stay true: every file a doc names exists (with the functions it names), every notebook is
listed, every public name has a docstring that shows a call, and the examples of docs/extending.md run."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import grok

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# `grok/engine.py`, `grok/engine.py: run_group`, `grok/sweep/spec.py: SweepSpec.groups, SweepSpec.batches`
CODE_REF = re.compile(r"`((?:grok|tasks|probes|tests|benchmarks|notebooks)/[\w/.]+)(?:: ([\w., ]+))?`")


def _layout_rows(text: str) -> list[tuple[str, str]]:
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| `")]
    return [(a.strip(), b.strip()) for a, b in rows]


def test_every_path_in_the_layout_table_exists():
    rows = _layout_rows((ROOT / "docs" / "architecture.md").read_text())
    assert len(rows) > 20
    for first, second in rows:
        paths = re.findall(r"`([^`]+)`", first)
        for path in paths:
            assert (ROOT / path).exists(), f"docs/architecture.md names {path}, which does not exist"
        folder = ROOT / paths[0] if len(paths) == 1 and (ROOT / paths[0]).is_dir() else None
        for name in re.findall(r"`([\w/]+\.(?:py|md|toml))`", second):
            base = folder if folder is not None and "/" not in name else ROOT
            assert (base / name).exists(), f"docs/architecture.md: {paths} names {name}, which does not exist"
    listed = {p for first, _ in rows for p in re.findall(r"`([^`]+)`", first)}
    for module in sorted((ROOT / "grok").glob("*.py")):  # and every top-level module is in the table
        assert f"grok/{module.name}" in listed, f"grok/{module.name} is missing from the layout table"


def _defined(path: Path) -> set[str]:
    """Top-level functions, classes and assignments of a module, and `Class.method` names."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                names |= {f"{node.name}.{m.name}" for m in node.body if isinstance(m, ast.FunctionDef)}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_file_and_function_a_doc_names_exists(doc):
    for path, names in CODE_REF.findall(doc.read_text()):
        assert (ROOT / path).exists(), f"{doc.name} names {path}, which does not exist"
        if names and path.endswith(".py"):
            defined = _defined(ROOT / path)
            for name in (n.strip() for n in names.split(",")):
                assert name in defined, f"{doc.name} names {path}: {name}, which is not defined there"


def test_every_notebook_is_in_the_readme_table():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| notebook | shows |", 1)[1].split("\n\n", 1)[0]
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert f"`notebooks/{nb.name}`" in table, f"{nb.name} is missing from the README's notebook table"


@pytest.mark.parametrize("name", grok.__all__)
def test_every_public_name_has_a_docstring_that_shows_a_call(name):
    doc = getattr(grok, name).__doc__ or ""
    calls = [line for line in doc.splitlines() if line.strip().startswith(">>>") and "(" in line]
    assert calls, f"grok.{name}'s docstring shows no call (a '>>> ' line)"


@pytest.mark.parametrize("name", grok.__all__)
def test_every_public_name_is_in_the_architecture_pages_public_surface(name):
    surface = (ROOT / "docs" / "architecture.md").read_text().split("## Public surface", 1)[1].split("\n## ", 1)[0]
    assert re.search(rf"`{name}\b", surface), f"grok.{name} is missing from docs/architecture.md's Public surface"


def test_extending_states_the_contracts():
    text = (ROOT / "docs" / "extending.md").read_text()
    for heading in ("## Writing a probe", "## Writing a task", "## Writing a transform", "## Writing a model"):
        assert heading in text
    for word in ("lapack=True", "dynamic", "static", "TaskSpec", "n_tokens", "option(", "inside the compiled program"):
        assert word in text


@pytest.mark.slow
def test_the_examples_of_extending_md_run(monkeypatch):
    """Each python block of docs/extending.md, run in order in one namespace (training shortened)."""
    from grok.registry import PROBES, TASKS, TRANSFORMS

    real_train = grok.train
    short = {"train.steps": 8, "train.log_every": 4, "train.schedule": "linear"}
    monkeypatch.setattr(grok, "train", lambda cfg, *a, **k: real_train(cfg.override(**short), *a, progress=False))
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "extending.md").read_text(), re.S)
    assert len(blocks) >= 3
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block, "docs/extending.md", "exec"), namespace)  # noqa: S102
        run = namespace["run"]
        assert run.history["singular_values"].shape[:2] == run.history["stable_rank"].shape
        assert namespace["cfg"].optim.chain == ("perp_grad", "clip", "adamw")
        assert namespace["cfg"].get("optim.clip.max_norm") == 0.5
        task_cfg = grok.Config().override(**{"task.kind": "sign_task", "task.sign_task.dim": 32})
        assert task_cfg.spec.input_dim == 32
    finally:
        PROBES._items.pop("first_layer_rank", None)
        TASKS._items.pop("sign_task", None)
        TRANSFORMS._items.pop("clip", None)
