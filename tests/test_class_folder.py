"""Every entry of a class's submissions folder accounted for (course_lib.harness.class_folder); cheap, no grading."""
import os

import nbformat
import pytest

from course_lib.harness import class_folder
from course_lib.harness.class_folder import NOT_SUBMITTED, check_student, survey

BATCH = ["01_rnn"]
ALL = ["01_rnn", "02_lstm"]


def _nb(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(), path)


def test_a_class_with_every_kind_of_entry(tmp_path):
    _nb(tmp_path / "alice" / "01_rnn.ipynb")
    _nb(tmp_path / "alice" / "01_rnn (1).ipynb")                 # a copy beside the exact file: a note
    _nb(tmp_path / "alice" / "02_lstm.ipynb")                    # another lesson: not this batch's business
    _nb(tmp_path / "bob" / "01_rnn" / "01_rnn.ipynb")            # nbgrader's layout
    _nb(tmp_path / "carol" / "01_RNN.ipynb")                     # case changed
    _nb(tmp_path / "dave" / "01_rnn (1).ipynb")                  # only a copy
    (tmp_path / "erin").mkdir()                                  # empty
    _nb(tmp_path / "frank" / "notes.ipynb")                      # not a lesson
    (tmp_path / "gina").mkdir()
    os.mkfifo(tmp_path / "gina" / "01_rnn.ipynb")                # a FIFO: reading it would hang the grader
    (tmp_path / "hal").mkdir()
    (tmp_path / "hal" / "01_rnn.ipynb").symlink_to(tmp_path / "alice" / "01_rnn.ipynb")
    for name in ("*", "--help", "-rf", "bob[1]", "new\nline", "..x", "é"):
        _nb(tmp_path / name / "01_rnn.ipynb")
    (tmp_path / "stray.ipynb").write_text("{}")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / ".DS_Store").write_text("")                      # litter: skipped

    found = survey(tmp_path, BATCH, ALL)
    assert sorted(found.submissions) == [("alice", "01_rnn"), ("bob", "01_rnn")]
    assert found.notes == {("alice", "01_rnn"): ["also handed in, not graded: 01_rnn (1).ipynb"]}
    rows = found.rows
    assert rows[("carol", "01_rnn")] == "not gradable: found 01_RNN.ipynb; expected exactly 01_rnn.ipynb (rename it)"
    assert rows[("dave", "01_rnn")].startswith("not gradable: found 01_rnn (1).ipynb; expected exactly 01_rnn.ipynb")
    assert rows[("erin", "01_rnn")] == NOT_SUBMITTED
    assert rows[("frank", "01_rnn")] == NOT_SUBMITTED
    assert rows[("frank", "")] == "not gradable: not a lesson notebook: notes.ipynb"
    assert rows[("gina", "01_rnn")] == "not gradable: a FIFO, not a notebook file"
    assert rows[("hal", "01_rnn")] == "not gradable: a symbolic link, not a notebook file"
    for name in ("*", "--help", "-rf", "bob[1]", "new\nline", "..x", "é"):
        assert rows[(ascii(name), "01_rnn")].startswith(f"not gradable: the folder name {ascii(name)} is not a "
                                                        f"student id"), name
    assert rows[("stray.ipynb", "")].startswith("not gradable: a file, not a student's folder")
    assert rows[("pipe", "")].startswith("not gradable: a FIFO, not a student's folder")
    # every entry has a row or a submission, and nothing else
    assert len(rows) + len(found.submissions) == 18


@pytest.mark.parametrize("name", ["*", "a*", "?", "[ab]", "-x", "--help", ".hidden", "a b", "a/b", "a\nb", "",
                                  "x" * 101, "ü"])
def test_nbgrader_never_receives_a_pattern(name):
    with pytest.raises(ValueError, match="expected a folder name of ASCII letters"):
        check_student(name)


@pytest.mark.parametrize("name", ["alice", "a.b-c_d", "s123@uni.edu", "0x"])
def test_safe_names_pass(name):
    assert check_student(name) == name and class_folder.shown(name) == name


def test_no_entry_at_all_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no submissions found"):
        survey(tmp_path, BATCH, ALL)
