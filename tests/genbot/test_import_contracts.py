"""The import contracts in .importlinter hold on this tree and catch each kind of wrong import."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("genbot", "billing", "jobs", "payments", "promotions", "telegram_bot", "standins")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / ".importlinter")],
        cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory):
    tree = tmp_path_factory.mktemp("tree")
    shutil.copy(ROOT / ".importlinter", tree)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tree


def test_the_tree_keeps_every_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("module, line, contract", [
    ("billing/money.py", "from payments import models", "Layers"),
    ("billing/money.py", "from genbot import admin_site", "Layers"),
    ("jobs/models.py", "from payments import models", "jobs and payments never import each other"),
    ("payments/models.py", "from promotions import models", "Layers"),
    ("promotions/models.py", "from telegram_bot import texts", "Layers"),
    ("promotions/models.py", "from jobs import models", "Layers"),
    ("payments/models.py", "from telegram_bot import texts", "Layers"),
    ("genbot/counters.py", "from billing import models", "Layers"),
    ("telegram_bot/texts.py", "import standins", "No product module imports the local stand-ins"),
])
def test_a_wrong_import_breaks_its_contract(tree_copy, module, line, contract):
    path = tree_copy / module
    original = path.read_text()
    path.write_text(original + f"\n\ndef _wrong_import():\n    {line}  # noqa\n")
    try:
        result = lint_imports(tree_copy)
    finally:
        path.write_text(original)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert contract in broken and module.replace("/", ".").removesuffix(".py") in broken
