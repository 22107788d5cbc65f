"""metrics.json as a typed, versioned record: written by run(), read back by every reader."""

import json

import pytest

from convlab.compare import UNREADABLE, find_jobs
from convlab.errors import ConvlabError
from convlab.record import RECORD_VERSION, RunRecord


def test_a_record_round_trips_through_its_file(tmp_path):
    record = RunRecord(metrics={"val/acc": 0.9, "test/acc": 0.8}, epochs_run=2, best_epoch=1)
    record.write(tmp_path / "metrics.json")
    assert RunRecord.read(tmp_path / "metrics.json") == record
    assert record.test_acc == 0.8 and record.val_acc == 0.9


def test_a_record_from_before_the_version_field_reads_with_defaults(tmp_path):
    old = {"status": "finished", "metrics": {"val/acc": 0.7}, "overrides": ["seed=1"]}
    (tmp_path / "metrics.json").write_text(json.dumps(old))
    record = RunRecord.read(tmp_path / "metrics.json")
    assert record.version == 1 and record.validation and record.val_acc == 0.7
    assert record.history == [] and record.overrides == ["seed=1"]


def test_an_unvalidated_run_has_no_val_acc_to_rank_by():
    record = RunRecord(metrics={"val/acc": 0.9, "test/acc": 0.8}, validation=False)
    assert record.val_acc is None and record.test_acc == 0.8


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "cannot be read as a run record"),
        ('{"status": "finished"}', "is not a convlab run record: it has no metrics"),
        (json.dumps({"metrics": {}, "version": RECORD_VERSION + 1}), "update convlab to read it"),
    ],
)
def test_a_bad_record_is_one_clear_error(tmp_path, text, message):
    (tmp_path / "metrics.json").write_text(text)
    with pytest.raises(ConvlabError, match=message):
        RunRecord.read(tmp_path / "metrics.json")


def test_compare_lists_a_newer_record_as_unreadable_and_says_why(tmp_path):
    job = tmp_path / "0_seed=0"
    job.mkdir()
    (job / "metrics.json").write_text(json.dumps({"metrics": {}, "version": RECORD_VERSION + 1}))
    (found,) = find_jobs([tmp_path])
    assert found.state == UNREADABLE and "update convlab to read it" in found.reason
