"""The learner's workspace (course_lib.harness.workspace): no solutions or hidden tests in a learner's copy, an
edited copy never overwritten, a changed lesson offered beside it."""
import ast
import json

import nbformat
import pytest

from course_lib.harness import runner, workspace


def _regions(source: str, begin: str, end: str) -> list[str]:
    """The lines strictly inside each begin/end pair of `source`."""
    out, inside = [], False
    for line in source.splitlines():
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside and line.strip():
            out.append(line.strip())
    return out


@pytest.mark.parametrize("lesson", runner.discover(), ids=lambda p: p.stem)
def test_a_learners_copy_of_each_lesson_holds_no_solution_and_no_hidden_test(lesson):
    teacher = nbformat.read(lesson, as_version=4)
    student = workspace.student_version(teacher)
    assert len(student.cells) == len(teacher.cells)
    hidden_lines = solution_lines = 0
    for t, s in zip(teacher.cells, student.cells):
        secret = (_regions(t.source, "### BEGIN SOLUTION", "### END SOLUTION")
                  + _regions(t.source, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"))
        solution_lines += len(_regions(t.source, "### BEGIN SOLUTION", "### END SOLUTION"))
        hidden_lines += len(_regions(t.source, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"))
        student_lines = {line.strip() for line in s.source.splitlines()}
        assert not [line for line in secret if line in student_lines], f"{lesson.name}: a secret line survived"
        assert not any(m in s.source for m in workspace.MARKERS)
        if not secret:
            assert s.source == t.source                                  # everything else is the lesson
        if s.cell_type == "code":
            assert s.outputs == [] and s.execution_count is None
            ast.parse("\n".join(l for l in s.source.splitlines() if not l.lstrip().startswith(("%", "!"))))
    assert solution_lines and hidden_lines, f"{lesson.name}: expected exercises with hidden tests (the control)"
    n_stubs = sum(c.source.count("raise NotImplementedError()") for c in student.cells)
    n_solutions = sum(c.source.count("### BEGIN SOLUTION") for c in teacher.cells)
    assert n_stubs >= n_solutions > 0


def test_cell_rules():
    code = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
    assert workspace.student_cell_source(code, "code") == \
        "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    tests = "assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(3) == 6\n### END HIDDEN TESTS\n"
    assert workspace.student_cell_source(tests, "code") == "assert f(1) == 2"
    assert workspace.student_cell_source("Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION", "markdown") \
        == "Why?\nYOUR ANSWER HERE"
    assert workspace.student_cell_source("x = 42", "code", solution_cell=True) == CODE_STUB_TEXT
    assert workspace.student_cell_source("x = 42", "code") == "x = 42"
    with pytest.raises(ValueError, match="unbalanced nbgrader markers"):
        workspace.student_cell_source("### BEGIN SOLUTION\nx = 1\n", "code")


CODE_STUB_TEXT = "# YOUR CODE HERE\nraise NotImplementedError()"


def _lesson(folder, name, answer, prose="An exercise."):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(prose),
                nbformat.v4.new_code_cell(f"def f():\n    ### BEGIN SOLUTION\n    return {answer}\n    ### END SOLUTION")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="leaked output")]
    path = folder / name
    nbformat.write(nb, path)
    return path


def test_an_edited_copy_is_never_overwritten_and_a_changed_lesson_is_offered_beside_it(tmp_path):
    src, ws = tmp_path / "notebooks", tmp_path / "workspace"
    src.mkdir()
    one = _lesson(src, "01_one.ipynb", "'secret-1'")
    first = workspace.sync(ws, [one])
    assert first.added == ["01_one.ipynb"]
    copy = ws / "01_one.ipynb"
    text = copy.read_text()
    assert "secret-1" not in text and "leaked output" not in text and "NotImplementedError" in text

    # untouched copy + unchanged lesson: nothing happens; unchanged copy + changed lesson: it follows
    assert workspace.sync(ws, [one]) == workspace.Sync([], [], [], [])
    _lesson(src, "01_one.ipynb", "'secret-1'", prose="Better prose.")
    assert workspace.sync(ws, [one]).updated == ["01_one.ipynb"]
    assert "Better prose." in copy.read_text()

    # the learner edits the copy: a changed lesson goes beside it, the copy keeps every byte
    nb = nbformat.read(copy, as_version=4)
    nb.cells[1].source = "def f():\n    return 'my own answer'"
    nbformat.write(nb, copy)
    mine = copy.read_bytes()
    assert workspace.sync(ws, [one]).kept == ["01_one.ipynb"]          # lesson unchanged: nothing offered
    assert not (ws / "01_one.updated.ipynb").exists()
    _lesson(src, "01_one.ipynb", "'secret-2'", prose="Even better prose.")
    two = _lesson(src, "02_two.ipynb", "'secret-3'")
    done = workspace.sync(ws, [one, two])
    assert done.offered == ["01_one.updated.ipynb"] and done.added == ["02_two.ipynb"]
    assert copy.read_bytes() == mine
    offered = (ws / "01_one.updated.ipynb").read_text()
    assert "Even better prose." in offered and "secret-2" not in offered
    assert workspace.sync(ws, [one, two]).kept == ["01_one.ipynb"]     # offered once, not rewritten every time
    assert copy.read_bytes() == mine
    assert set(json.loads((ws / workspace.MANIFEST).read_text())) == {"01_one.ipynb", "02_two.ipynb"}


def test_solutions_on_purpose(tmp_path):
    src = tmp_path / "notebooks"
    src.mkdir()
    one = _lesson(src, "01_one.ipynb", "'the-answer'")
    workspace.sync(tmp_path / "solutions", [one], solutions=True)
    text = (tmp_path / "solutions" / "01_one.ipynb").read_text()
    assert "the-answer" in text and "leaked output" not in text
    with pytest.raises(ValueError, match="NN_name.ipynb"):
        workspace.sync(tmp_path / "w", [tmp_path / "notes.ipynb"])


def test_lab_serves_the_workspace_and_allows_root_only_for_root(tmp_path):
    as_root = workspace.lab_command(tmp_path, ["--no-browser", "--ip", "0.0.0.0"], is_root=True)
    as_user = workspace.lab_command(tmp_path, ["--no-browser"], is_root=False)
    assert as_root[1:] == ["lab", f"--ServerApp.root_dir={tmp_path}", "--allow-root", "--no-browser", "--ip", "0.0.0.0"]
    assert "--allow-root" not in as_user and as_user[-1] == "--no-browser"
    assert workspace.lab_command(tmp_path, ["--allow-root"], is_root=True).count("--allow-root") == 1
    line = "[I ServerApp]     http://127.0.0.1:8888/lab?token=abc123"
    assert workspace.LAB_URL.search(line).group(1) == "http://127.0.0.1:8888/lab?token=abc123"


@pytest.mark.parametrize("lesson", runner.discover(), ids=lambda p: p.stem)
def test_run_all_in_a_learners_copy_runs_the_whole_lesson_before_the_first_exercise(lesson):
    """Run All stops at the first unsolved exercise (NotImplementedError): every claim of the lesson (and
    lesson.finish(), where it has one) must come before it."""
    student = workspace.student_version(nbformat.read(lesson, as_version=4))
    code = [c.source for c in student.cells if c.cell_type == "code"]
    first_stub = next(i for i, s in enumerate(code) if "raise NotImplementedError()" in s)
    last = max(i for i, s in enumerate(code) if "claims.check(" in s or "lesson.finish()" in s)
    assert last < first_stub
