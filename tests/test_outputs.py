import json
import os
import stat

import numpy as np
import pytest

from mnistdist.errors import OutputError
from mnistdist.outputs import atomic_path, prepare_out_dir, write_json, write_text


def test_write_json_with_numpy_values(tmp_path):
    write_json(tmp_path / "m.json", {"a": np.float32(0.5), "b": np.arange(3), "c": np.int64(7)})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 0.5, "b": [0, 1, 2], "c": 7}


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_files_get_the_usual_mode(tmp_path):
    write_text(tmp_path / "a.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o666 & ~umask


def test_out_dir_refuses_existing_results_unless_overwrite(tmp_path):
    out = prepare_out_dir(tmp_path / "new" / "deeper")
    assert out.is_dir()
    (out / "metrics.json").write_text("{}")
    with pytest.raises(OutputError, match=r"already holds results.*--overwrite"):
        prepare_out_dir(out)
    assert prepare_out_dir(out, overwrite=True) == out


def test_out_dir_that_is_a_file_or_unwritable(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError):
        prepare_out_dir(tmp_path / "file")
    with pytest.raises(OutputError, match="cannot create output folder"):
        prepare_out_dir(tmp_path / "file" / "sub")
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(OutputError, match="not writable"):
            prepare_out_dir(ro)
