"""The one atomic write (ilf_kedro.infra.atomic) every cache, shard and manifest goes through."""

import pytest

from ilf_kedro.infra.atomic import atomic_path, write_text_atomic


def test_a_write_replaces_the_file_whole(tmp_path):
    target = tmp_path / "manifest.json"
    target.write_text("old")
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "batch-0.parquet"
    target.write_text("complete")
    with pytest.raises(RuntimeError, match="killed"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["batch-0.parquet"]
