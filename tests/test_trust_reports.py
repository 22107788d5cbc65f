"""Reports on a sweep directory someone else wrote: compare.py and the sweep summary show its
records as data, never write through its links or into its runs (records written by hand here,
as in tests/test_compare.py: no training)."""

import csv
import hashlib
import html
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convlab.compare import compare, escape, printable
from convlab.errors import ConvlabError
from convlab.sweep import SUMMARY, report
from tests.helpers import ROOT, failure_job, run_script, write_job

REPORTS = ("comparison.md", "comparison.csv", "val_acc.png")
HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "a|b",
    "\x1b[2J",
    "\r",
    "\x07",
    "\x1b]0;title\x07",
    "\x9b31m",
    "[click](javascript:alert(1))",
    "`code`",
    "_emphasis_ *strong*",
    "$\\frac$",  # matplotlib's math, which fails to draw
    "\udcff",  # a name that is not UTF-8 on disk (byte 0xff), as Python reads it
]
CONTROLS = ("\x1b", "\r", "\x07", "\x9b", "\udcff")


def fingerprint(path: Path) -> tuple:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns, hashlib.sha1(path.read_bytes()).hexdigest()


@pytest.fixture
def sentinel(tmp_path) -> Path:
    """A file outside the sweep that a planted link points at: it must never change."""
    target = tmp_path / "outside" / "bashrc"
    target.parent.mkdir()
    target.write_text("export PATH=/usr/bin\n")
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))
    return target


def sweep_with_jobs(sweep: Path) -> Path:
    """A sweep directory (Hydra's multirun.yaml) with a finished job and a failed one."""
    sweep.mkdir(parents=True)
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    write_job(sweep, "0_x=1", ["x=1", "seed=0"], 0.8)
    failure_job(sweep, "1_x=2", "failed", "out of memory", overrides=["x=2"])
    return sweep


def cells(line: str) -> list[str]:
    """A Markdown table row's cells: split at the `|`s that are not escaped."""
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


@pytest.mark.parametrize("name", REPORTS)
def test_a_link_planted_as_a_report_file_is_refused_and_its_target_untouched(
    tmp_path, sentinel, name
):
    sweep = sweep_with_jobs(tmp_path / "sweep")
    (sweep / name).symlink_to(sentinel)
    before = fingerprint(sentinel)
    with pytest.raises(ConvlabError, match=f"{name} is a symbolic link") as e:
        compare(sweep)
    assert "\n" not in str(e.value)
    assert fingerprint(sentinel) == before and (sweep / name).is_symlink()


@pytest.mark.parametrize("name", [SUMMARY, "comparison.md"])
def test_a_link_planted_in_a_sweep_is_refused_by_its_summary_which_still_prints(
    tmp_path, sentinel, name
):
    sweep = sweep_with_jobs(tmp_path / "sweep")
    (sweep / name).symlink_to(sentinel)
    before = fingerprint(sentinel)
    summary = report(sweep)
    assert "| 0_x=1 | finished | 0.8000 | 0.7900 |" in summary
    assert f"(not written into {sweep}: {sweep / name} is a symbolic link" in summary
    assert fingerprint(sentinel) == before and (sweep / name).is_symlink()


def test_the_script_refuses_a_planted_link_in_one_line(tmp_path, sentinel):
    sweep = sweep_with_jobs(tmp_path / "sweep")
    (sweep / "comparison.md").symlink_to(sentinel)
    before = fingerprint(sentinel)
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compare.py"), str(sweep)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and out.stdout == "" and "Traceback" not in out.stderr
    assert out.stderr.startswith(f"convlab: error: {sweep / 'comparison.md'} is a symbolic link")
    assert out.stderr.count("\n") == 1
    assert fingerprint(sentinel) == before


def test_a_recorded_resume_command_is_never_shown_convlabs_own_is(tmp_path, monkeypatch, capsys):
    sweep = sweep_with_jobs(tmp_path / "sweep")
    planted = "rm -rf ~; echo pwned"
    job = failure_job(sweep, "2_stopped", "interrupted", "interrupted by SIGTERM", resume=planted)
    code, console, _ = run_script(monkeypatch, capsys, str(sweep))
    assert code == 0
    text = (sweep / "comparison.md").read_text()
    ours = f"python train.py resume={job}"
    assert f"- 2_stopped: interrupted: interrupted by SIGTERM; continue it with {ours}\n" in text
    assert console == text
    assert "- 1_x=2 (x=2): failed: out of memory\n" in text  # no resume recorded: no command shown
    outputs = [console, text, (sweep / "comparison.csv").read_text(), report(sweep)]
    outputs.append((sweep / SUMMARY).read_text())
    assert not [o for o in outputs if "rm -rf" in o or "pwned" in o]


def test_records_text_is_escaped_in_every_report_and_on_the_console(tmp_path, monkeypatch, capsys):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    for num, hostile in enumerate(HOSTILE):
        name = f"{num}_{hostile}"
        if num % 2:
            write_job(sweep, name, [f"x={hostile}", "seed=0"], 0.5 + num / 100)
        else:
            failure_job(sweep, name, "failed", f"{hostile} | error\nsecond line", resume="x")
    code, console, _ = run_script(monkeypatch, capsys, str(sweep))
    assert code == 0
    markdown = (sweep / "comparison.md").read_text()
    summary = report(sweep)  # what a terminal shows: printable, and paths and commands paste
    for text in (console, summary):
        assert not [c for c in CONTROLS if c in text]
        assert not [c for c in text if unicodedata.category(c)[0] == "C" and c != "\n"]
    assert "| error…; continue it with python train.py " in console
    for text in (markdown, (sweep / SUMMARY).read_text()):  # what a Markdown renderer shows
        assert not [raw for raw in ("<script", "<img", *CONTROLS) if raw in text]
        assert not [c for c in text if unicodedata.category(c)[0] == "C" and c != "\n"]
        rows = [line for line in text.splitlines() if line.startswith("|")]
        assert rows and len({len(cells(row)) for row in rows}) == 1  # no cell broken out of
    assert (
        "- 0\\_&lt;script&gt;alert(1)&lt;/script&gt;: failed: &lt;script&gt;alert(1)&lt;/script&gt;"
        " \\| error…; continue it with "
    ) in markdown
    assert "| x=&lt;img src=x onerror=alert(1)&gt; | 1 |" in markdown
    assert "- 2_a\\|b: failed: a\\|b \\| error…" in markdown
    assert "| x=\\`code\\` |" in markdown and "| x=\\$\\\\frac\\$ |" in markdown
    assert "- 8\\_\\[click\\](javascript:alert(1)): failed: " in markdown
    assert "| 2_a\\|b | failed (a\\|b \\| error) | – | – |" in (sweep / SUMMARY).read_text()
    csv_text = (sweep / "comparison.csv").read_text()
    assert not [c for c in CONTROLS if c in csv_text]
    assert "x=<img src=x onerror=alert(1)>" in csv_text  # data, as it was, in its column
    assert (sweep / "val_acc.png").read_bytes().startswith(b"\x89PNG")


def test_a_csv_cell_from_a_record_is_never_a_formula_but_numbers_stay_numbers(tmp_path):
    formulas = ['=HYPERLINK("http://x")', "+1+2", "-cmd", "@SUM(A1)", " =1+1"]
    for num, formula in enumerate(formulas):
        write_job(tmp_path, f"{num}", [formula], -0.5, model={"params": 10})
    compare(tmp_path)
    rows = list(csv.DictReader((tmp_path / "comparison.csv").open()))
    assert [r["configuration"] for r in rows] == [f"'{f}" for f in formulas]
    assert [r["overrides"] for r in rows] == [f"'{f}" for f in formulas]
    assert {(r["val_acc_mean"], r["test_acc_mean"], r["params"]) for r in rows} == {
        ("-0.5", "-0.51", "10")
    }


@pytest.fixture
def others(tmp_path) -> Path:
    """Beside the sweep: runs (one by each of their marks), another sweep, a link to a run."""
    hydra_run = tmp_path / "other" / "hydra_run"
    (hydra_run / ".hydra").mkdir(parents=True)
    (hydra_run / ".hydra" / "overrides.yaml").write_text("[]\n")
    finished = write_job(tmp_path / "other", "finished", ["seed=0"], 0.8)
    failure_job(tmp_path / "other", "failed", "failed", "no data")
    (tmp_path / "other_sweep").mkdir()
    (tmp_path / "other_sweep" / "multirun.yaml").write_text("hydra: {}\n")
    (tmp_path / "link").symlink_to(finished)
    return tmp_path


@pytest.mark.parametrize(
    "out",
    [
        "other/hydra_run",
        "other/hydra_run/report",
        "other/finished/checkpoints/report",
        "other/failed",
        "other_sweep",
        "other_sweep/a/b",
        "link/report",
    ],
)
def test_out_is_never_a_run_or_another_sweep(tmp_path, others, out):
    sweep = sweep_with_jobs(tmp_path / "sweep")
    listing = sorted(tmp_path.rglob("*"))
    with pytest.raises(
        ConvlabError,
        match=rf"^{re.escape(str(others / out))} is (inside .*, )?(a run's|another sweep's) "
        r"directory, .*: pass --out DIR",
    ) as e:
        compare(sweep, others / out)
    assert "\n" not in str(e.value) and sorted(tmp_path.rglob("*")) == listing


def test_out_may_be_the_compared_sweep_or_a_folder_in_it(tmp_path):
    sweep = sweep_with_jobs(tmp_path / "sweep")
    compare(sweep)
    compare(sweep, sweep / "reports")
    assert (sweep / "comparison.md").is_file() and (sweep / "reports" / "comparison.md").is_file()


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
        ("a|b & c", "a\\|b &amp; c"),
        ("\x1b[2Jx\ry\x07z", "x yz"),
        ("\x1b]8;;http://evil\x07link\x1b]8;;\x07", "link"),  # a terminal's hyperlink
        ("2_act=relu,seed=0", "2_act=relu,seed=0"),  # `_` inside a word does not act
        ("+callbacks.kill._target_=x", "\\+callbacks.kill.\\_target\\_=x"),
        ("1. first", "1\\. first"),
        ("# heading", "\\# heading"),
        ("[a](javascript:x) `c` *b* ~s~ \\", "\\[a\\](javascript:x) \\`c\\` \\*b\\* \\~s\\~ \\\\"),
        ("a\u202eb\u200bc\ud800", "abc"),  # bidi and zero-width characters, a lone surrogate
    ],
)
def test_escape_shows_a_records_text_literally(text, shown):
    assert escape(text) == shown


def unescape(markdown: str) -> str:
    """What a CommonMark renderer shows for escaped text: backslash escapes, then entities."""
    return html.unescape(re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown))


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.characters(), max_size=40) | st.lists(st.sampled_from(HOSTILE)).map("".join)
)
def test_fuzz_escaped_text_is_inert_and_reads_as_the_printable_text(text):
    shown = escape(text)
    assert not [c for c in shown if unicodedata.category(c)[0] == "C"]
    assert "<" not in shown and ">" not in shown
    assert not set(re.sub(r"\\.", "", shown)) & set("\\`*[]|~$")  # each one escaped
    assert unescape(shown) == printable(text).strip()
    assert not [c for c in printable(text) if unicodedata.category(c)[0] == "C"]


def test_printable_keeps_ordinary_text():
    text = "val/acc 0.9 ± 0.1 — ünïcödé 日本 🙂"
    assert printable(text) == text and escape(text) == text
    assert printable("a\tb\nc") == "a b c"
