"""scripts/results.py: the README's and the page's tables are what the stored measurements render
(checked without measuring anything), and a measured row lands in the store and the pages."""

import json
import re
import runpy
import sys

import pytest

from tests.helpers import ROOT, TINY

RESULTS = ROOT / "scripts" / "results.py"


@pytest.fixture
def results(monkeypatch):
    """scripts/results.py as a module, with scripts/ on the path as when it runs."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    return runpy.run_path(str(RESULTS))


def blocks(text: str) -> dict[str, str]:
    """Each marked table of a page: its name and what stands between its markers."""
    found = {}
    for part in text.split("<!-- results:")[1:]:
        name, rest = part.split(" -->", 1)
        found[name] = rest.split(f"<!-- /results:{name} -->", 1)[0]
    return found


def test_the_readme_and_the_page_show_what_the_stored_measurements_render(results):
    store = json.loads((ROOT / "docs" / "results.json").read_text())
    readme, page = ((ROOT / p).read_text() for p in ("README.md", "docs/results.md"))
    for text in (readme, page):
        assert results["render"](text, store) == text, "run: python scripts/results.py"
    assert blocks(readme)["summary"] == blocks(page)["summary"]
    assert set(blocks(page)) == set(results["TABLES"])  # every table is on the page
    for name in store["rows"]:  # every stored row has its table there, and it is not empty
        shown = blocks(page)[results["ROWS"][name].table]
        assert len(shown.strip().splitlines()) > 2 and "not measured" not in shown


@pytest.mark.slow
def test_a_measured_row_keeps_its_figures_commit_and_load_and_is_rendered(
    results, tmp_path, monkeypatch
):
    """A real measurement, tiny: a recipe row on synthetic data, through bench_tta.py."""
    tiny = results["recipe"]("tiny LeNet", 0.2, *TINY, goal=0.5)
    monkeypatch.setitem(results["ROWS"], "tiny", tiny)
    page = tmp_path / "page.md"
    page.write_text("# page\n<!-- results:models -->\nold\n<!-- /results:models -->\nend\n")
    store = tmp_path / "results.json"
    store.write_text(json.dumps({"rows": {}}))
    results["main"](["--rows", "tiny", "--store", str(store), "--pages", str(page)])

    row = json.loads(store.read_text())["rows"]["tiny"]
    (figures,) = row["figures"]
    assert figures["epochs"] == 1 and 0 <= figures["test_acc"] <= 1 and figures["wall_s"] > 0
    assert row["commands"][0].startswith("python scripts/bench_tta.py --seeds 0 --out <tmp>/runs")
    assert re.fullmatch(r"[0-9a-f]{7,}(\+dirty)?", row["commit"]) and len(row["load"]) == 2
    text = page.read_text()
    line = next(x for x in text.splitlines() if x.startswith("| tiny LeNet |"))
    assert f"**{figures['test_acc']:.4f}**" in line and row["date"][:10] in line
    assert "old" not in text and text.startswith("# page\n") and text.endswith("\nend\n")


def test_gpu_rows_come_from_gpu_run_results_with_their_own_date_gpu_and_commit(results, tmp_path):
    out = tmp_path / "gpu_out"
    out.mkdir()
    saved = {
        "status": [{"step": "1", "name": "resnet18_tuned", "status": "ok", "wall_s": "612"}],
        "runs": {"resnet18_tuned": {"metrics": {"test/acc": 0.9412}, "epochs_run": 10}},
        "gpu": "NVIDIA H100 80GB HBM3, 570.0, 81559 MiB",
        "commit": "0123456789abcdef",
        "date": "2026-12-01 09:00 UTC",
        "dry_run": False,
    }
    (out / "results.json").write_text(json.dumps(saved))
    store = tmp_path / "results.json"
    results["main"](["--gpu", str(out), "--store", str(store), "--pages"])
    table = results["models_table"](json.loads(store.read_text()))
    line = next(x for x in table.splitlines() if "experiment=resnet18_tuned" in x)
    assert "**0.9412**" in line and "10.2 min" in line and "| 10 |" in line
    assert "2026-12-01, NVIDIA H100 80GB HBM3" in line and "`0123456`" in line
    assert "pending" in next(x for x in table.splitlines() if "experiment=vgg_tuned" in x)


def test_list_names_every_row_with_its_commands(results, capsys):
    results["main"](["--list"])
    out = capsys.readouterr().out
    for name, row in results["ROWS"].items():
        assert f"{name}: {row.label}" in out
    assert "in --quick" in out and sys.executable not in out
