"""The Russian catalogue holds what the code says and nothing it stopped saying.

The code's messages are extracted the way ``makemessages`` does (xgettext over the Python
files, Django's ``templatize`` over the templates) but without rewriting the catalogue; an entry
no longer extracted is a text that was removed or reworded, kept in the .po by mistake. The
customer texts are also checked from the other side: each function of ``telegram_bot.texts`` is
called by the product, not only by tests.
"""
from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

from django.conf import settings
from django.utils.translation.template import templatize

BASE = Path(settings.BASE_DIR)
CATALOGUE = BASE / "locale" / "ru" / "LC_MESSAGES" / "django.po"
SKIPPED_DIRS = {".venv", "tests", "node_modules", "var", ".git", "locale"}
KEYWORDS = ["gettext", "gettext_lazy", "gettext_noop", "_", "ngettext:1,2", "ngettext_lazy:1,2",
            "pgettext:1c,2", "pgettext_lazy:1c,2"]
ESCAPES = {"n": "\n", "t": "\t"}


def _product_files(suffix: str) -> list[Path]:
    return sorted(p for p in BASE.rglob(f"*{suffix}") if not SKIPPED_DIRS & set(p.relative_to(BASE).parts))


def _msgids(po_text: str) -> set[str]:
    """The msgids of a .po/.pot text (the header's empty one left out)."""
    found = set()
    for block in re.finditer(r'^msgid ((?:".*"\n?)+)', po_text, re.M):
        text = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', block.group(1)))
        if text:
            found.add(re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), m.group(1)), text))
    return found


def _extracted(tmp_path: Path) -> set[str]:
    sources = [str(p) for p in _product_files(".py")]
    for index, template in enumerate(_product_files(".html")):
        python_like = tmp_path / f"template{index}.py"
        python_like.write_text(templatize(template.read_text(), origin=str(template)))
        sources.append(str(python_like))
    command = ["xgettext", "--language=Python", "--from-code=UTF-8", "--output=-", "--no-location",
               *(f"--keyword={keyword}" for keyword in KEYWORDS), *sources]
    return _msgids(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def test_every_catalogue_entry_is_still_said_by_the_code(tmp_path):
    catalogue = _msgids(CATALOGUE.read_text())
    extracted = _extracted(tmp_path)
    assert "Start?" in extracted and "Start?" in catalogue  # the extraction works at all
    assert sorted(catalogue - extracted) == []


def test_every_customer_text_is_used_by_the_product():
    texts_module = BASE / "telegram_bot" / "texts.py"
    public = [
        node.name for node in ast.parse(texts_module.read_text()).body
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
    ]
    product = "\n".join(p.read_text() for p in _product_files(".py") if p != texts_module)
    own = texts_module.read_text()
    unused = [
        name for name in public
        if not re.search(rf"\btexts\.{name}\b", product) and len(re.findall(rf"\b{name}\(", own)) < 2
    ]
    assert unused == []
