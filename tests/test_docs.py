"""The docs name the test that proves each promise: every name they cite is a test that exists."""

import re

import pytest

from tests.helpers import ROOT

TESTS = ROOT / "tests"
DEFINED = {
    name
    for path in TESTS.rglob("*.py")
    for name in re.findall(r"^def (test_\w+)", path.read_text(), re.MULTILINE)
}
MODULES = {path.stem for path in TESTS.rglob("test_*.py")}


@pytest.mark.parametrize(
    "doc", ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))]
)
def test_every_test_a_doc_names_exists(doc):
    path = ROOT / doc if doc == "README.md" else ROOT / "docs" / doc
    # a test's name is a sentence: three words or more (not a column such as test_acc)
    cited = set(re.findall(r"\btest(?:_[a-z0-9]+){3,}\b", path.read_text())) - MODULES
    assert not sorted(cited - DEFINED), f"{doc} names tests that do not exist"
