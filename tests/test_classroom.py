"""Classroom: every lesson's exercises, student copy and nbgrader autograding (course_lib.harness.classroom).

Each lesson is released and graded once per session, three submissions side by side (the `course` fixture,
tests/graded_course.py); these tests read that grading.
"""
import csv
import json
import re

import nbformat
import pytest
from graded_course import ONE_SOLVED, SOLUTION, UNTOUCHED
from graded_course import cells_by_id as _cells_by_id
from graded_course import error_outputs as _error_outputs

from course_lib.harness import classroom, runner

NOTEBOOKS = runner.discover()
IDS = [p.stem for p in NOTEBOOKS]


# ---- the exercise contract (cheap: reads the committed notebooks) ----

@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_lesson_has_exercises_in_the_course_format(nb_path):
    exercises = classroom.find_exercises(nb_path)  # raises "... has no nbgrader exercises" for a lesson without
    assert 2 <= len(exercises) <= 4, f"{nb_path.name}: {len(exercises)} exercises, the course asks for 2-4"
    nb = nbformat.read(nb_path, as_version=4)
    cells = _cells_by_id(nb)
    first = nb.cells.index(cells[exercises[0].solution_ids[0]])
    late_claims = [i for i, c in enumerate(nb.cells) if "claims.check(" in c.source and i > first]
    assert not late_claims, f"{nb_path.name}: exercises must come after the claims (cells {late_claims} check claims)"
    for ex in exercises:
        before = nb.cells[nb.cells.index(cells[ex.solution_ids[0]]) - 1]
        assert before.cell_type == "markdown", f"{nb_path.name}: exercise {ex.number} needs a markdown cell explaining it"
        for test_id in ex.test_ids:
            visible, _, hidden = cells[test_id].source.partition("### BEGIN HIDDEN TESTS")
            assert "### END HIDDEN TESTS" in hidden and "assert" in hidden, \
                f"{nb_path.name}: test cell {test_id} needs hidden tests (### BEGIN/END HIDDEN TESTS)"
            assert "assert" in visible, f"{nb_path.name}: test cell {test_id} needs a visible test before the hidden ones"


# ---- the student copy ----

@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_student_copy_hides_solutions_and_hidden_tests(nb_path, course):
    source = course.source(nb_path)
    copy = nbformat.read(course.release(nb_path), as_version=4)
    assert len(copy.cells) == len(source.cells)
    text = "\n".join(c.source for c in copy.cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    ours = _cells_by_id(copy)
    for ex in classroom.find_exercises(source):
        for grade_id in ex.solution_ids:
            assert "raise NotImplementedError()" in ours[grade_id].source
        for grade_id in ex.test_ids:
            hidden = re.search(r"### BEGIN HIDDEN TESTS(.*)### END HIDDEN TESTS", _cells_by_id(source)[grade_id].source, re.S)
            assert hidden.group(1).strip() not in ours[grade_id].source
    lesson = [(c.cell_type, c.source) for c in source.cells if "nbgrader" not in c.metadata]
    assert [(c.cell_type, c.source) for c in copy.cells if "nbgrader" not in c.metadata] == lesson
    assert all(c.get("outputs", []) == [] for c in copy.cells if c.cell_type == "code")


# ---- autograding: one nbgrader autograde per lesson, three submissions ----

@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_solution_earns_full_marks(nb_path, course):
    graded = course.graded(nb_path)
    marks = graded.marks[SOLUTION]
    assert set(marks) == {t for ex in graded.exercises for t in ex.test_ids}
    assert {k: s for k, (s, m) in marks.items() if s != m} == {}, f"the solution lost points: {marks}"
    assert sum(m for _, m in marks.values()) == sum(ex.points for ex in graded.exercises) > 0


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_untouched_student_copy_earns_zero(nb_path, course):
    marks = course.graded(nb_path).marks[UNTOUCHED]
    assert marks and {k: s for k, (s, _) in marks.items() if s != 0} == {}, f"unsolved exercises earned points: {marks}"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_one_solved_exercise_earns_exactly_its_points(nb_path, course):
    graded = course.graded(nb_path)
    first = graded.exercises[0]
    want = {t: (m if t in first.test_ids else 0.0) for t, (_, m) in graded.marks[SOLUTION].items()}
    assert {t: s for t, (s, _) in graded.marks[ONE_SOLVED].items()} == want
    assert sum(s for s, _ in graded.marks[ONE_SOLVED].values()) == first.points


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_student_copy_runs_until_the_first_exercise_raises_not_implemented(nb_path, course):
    graded = course.graded(nb_path)
    source = course.source(nb_path)
    executed = graded.autograded[UNTOUCHED]
    assert len(executed.cells) == len(source.cells)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in source.cells]
    first_exercise = set(graded.exercises[0].solution_ids + graded.exercises[0].test_ids)
    start = ids.index(graded.exercises[0].solution_ids[0])
    code = [(i, c) for i, c in enumerate(executed.cells) if c.cell_type == "code"]
    for i, cell in code:
        if i < start:
            assert cell.execution_count is not None and not _error_outputs(cell), \
                f"lesson cell {i} failed in the student copy: {[e.get('ename') for e in _error_outputs(cell)]}"
    i, cell = next((i, c) for i, c in code if _error_outputs(c))
    error = _error_outputs(cell)[0]
    assert error["ename"] == "NotImplementedError" and ids[i] in first_exercise, \
        f"the first error is {error['ename']} in cell {i} ({ids[i]}), expected NotImplementedError in exercise 1"
    for student in (SOLUTION, ONE_SOLVED):  # the lesson itself ran cleanly in every graded submission
        lesson_errors = [i for i, c in enumerate(graded.autograded[student].cells)
                         if i < start and _error_outputs(c)]
        assert lesson_errors == [], f"{student}: lesson cells {lesson_errors} raised"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_graded_lesson_recorded_its_claims_at_smoke(nb_path, course):
    course.graded(nb_path)  # each grader's kernel writes claims into a private build folder, not build/results
    build = classroom.kernel_build_dir(course.build / "nbgrader", SOLUTION, nb_path.stem)
    results = json.loads((build / "results" / f"{nb_path.stem}.json").read_text())
    assert results["profile"] == "smoke" and results["claims"], "the graded lesson recorded no claims"
    assert [c["name"] for c in results["claims"] if c["required"] and not c["passed"]] == []


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_grading_writes_grades_csv_and_feedback(nb_path, course):
    graded = course.graded(nb_path)
    total = sum(ex.points for ex in graded.exercises)
    with open(course.build / "grades.csv", newline="") as f:
        rows = {(r["student_id"], r["assignment"]): float(r["score"]) for r in csv.DictReader(f)}
    assert rows[(SOLUTION, nb_path.stem)] == total
    assert rows[(UNTOUCHED, nb_path.stem)] == 0
    assert rows[(ONE_SOLVED, nb_path.stem)] == graded.exercises[0].points
    with open(course.build / "grades_by_exercise.csv", newline="") as f:
        per_cell = [r for r in csv.DictReader(f) if r["lesson"] == nb_path.stem]
    assert {(r["student"], r["test_cell"]): float(r["score"]) for r in per_cell} == \
        {(s, t): score for s, marks in graded.marks.items() for t, (score, _) in marks.items()}
    for student in (SOLUTION, UNTOUCHED, ONE_SOLVED):
        html = (course.build / "feedback" / student / f"{nb_path.stem}.html").read_text(encoding="utf-8")
        assert nb_path.stem in html and "Score" in html


# ---- cheap unit tests of the tooling ----

def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def _solution(grade_id, source="def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"):
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": {
        "grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3, "solution": True}})


def _tests(grade_id, points=2, locked=True):
    return nbformat.v4.new_code_cell("assert f() == 1", metadata={"nbgrader": {
        "grade": True, "grade_id": grade_id, "locked": locked, "points": points, "schema_version": 3, "solution": False}})


def test_find_exercises_groups_solution_and_test_cells():
    found = classroom.find_exercises(_nb(nbformat.v4.new_markdown_cell("x"), _solution("a"), _solution("b"),
                                         _tests("a_t"), _tests("a_t2", points=1), _solution("c"), _tests("c_t")))
    assert found == [classroom.Exercise(1, ("a", "b"), ("a_t", "a_t2"), 3.0), classroom.Exercise(2, ("c",), ("c_t",), 2.0)]


@pytest.mark.parametrize("cells, message", [
    ([nbformat.v4.new_code_cell("x = 1")], "has no nbgrader exercises"),
    ([_solution("a"), _tests("a")], "used twice"),
    ([_solution("a", "def f():\n    return 1"), _tests("t")], "BEGIN SOLUTION"),
    ([_tests("t"), _solution("a")], "before any solution cell"),
    ([_solution("a"), _tests("t", locked=False)], "locked"),
    ([_solution("a"), _tests("t"), _solution("b")], "no test cell after it"),
])
def test_find_exercises_refuses_malformed_notebooks(cells, message):
    with pytest.raises(ValueError, match=message):
        classroom.find_exercises(_nb(*cells))


def test_tools_say_how_to_get_nbgrader(monkeypatch, tmp_path):
    monkeypatch.setattr(classroom.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="instructor"):
        classroom.generate_assignments(["01"], tmp_path)
