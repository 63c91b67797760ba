"""fit_suggestions: exclusions that make an over-window corpus fit, most expendable first."""

from __future__ import annotations

from app.core.fit import FitSuggestion, fit_suggestions, freed_total

CODEBASE = [
    ("repo/src/app/core.py", 40_000),
    ("repo/src/app/ui.py", 30_000),
    ("repo/src/lib/big.py", 90_000),
    ("repo/src/lib/small.py", 5_000),
    ("repo/tests/test_core.py", 12_000),
    ("repo/tests/fixtures/data.json", 8_000),
    ("repo/src/app/test_ui.py", 3_000),
    ("repo/src/lib/thing_test.go", 2_000),
    ("repo/dist/bundle.min.js", 25_000),
    ("repo/docs/guide.md", 15_000),
    ("repo/README.md", 1_000),
]


def paths(suggestions: list[FitSuggestion]) -> list[str]:
    return [s.path for s in suggestions]


def test_nothing_to_free_gives_nothing() -> None:
    assert fit_suggestions(CODEBASE, 0) == []
    assert fit_suggestions(CODEBASE, -5) == []
    assert fit_suggestions([], 100) == []


def test_tests_folder_comes_first_when_it_is_enough() -> None:
    result = fit_suggestions(CODEBASE, 10_000)
    assert paths(result) == ["repo/tests/"]
    assert result[0].tokens == 20_000
    assert result[0].files == ("repo/tests/fixtures/data.json", "repo/tests/test_core.py")
    assert "test" in result[0].why


def test_loose_test_files_follow_the_tests_folder() -> None:
    result = fit_suggestions(CODEBASE, 24_000)
    assert [(s.path, s.tokens) for s in result] == [
        ("repo/tests/", 20_000),
        ("repo/src/app/test_ui.py", 3_000),
        ("repo/src/lib/thing_test.go", 2_000),
    ]


def test_test_files_sharing_a_pattern_are_one_item() -> None:
    docs = [
        ("p/src/a.py", 1_000),
        ("p/src/test_a.py", 300),
        ("p/lib/test_b.py", 200),
        ("p/lib/b.py", 1_000),
    ]
    result = fit_suggestions(docs, 400)
    assert [(s.path, s.tokens, s.files) for s in result] == [
        ("**/test_*", 500, ("p/lib/test_b.py", "p/src/test_a.py"))
    ]
    assert "2 files" in result[0].why


def test_generated_output_comes_after_tests() -> None:
    result = fit_suggestions(CODEBASE, 40_000)
    # tests/ (20,000) is not enough alone; dist/ (25,000) then covers the rest and the
    # loose test files it makes unnecessary are dropped.
    assert [(s.path, s.tokens) for s in result] == [("repo/tests/", 20_000), ("repo/dist/", 25_000)]
    assert "generated" in result[1].why


def test_docs_come_before_code() -> None:
    result = fit_suggestions(CODEBASE, 60_000)
    assert paths(result) == ["repo/tests/", "repo/dist/", "repo/docs/"]
    assert freed_total(result) == 60_000


def test_code_goes_last_with_the_smallest_folder_that_covers() -> None:
    result = fit_suggestions(CODEBASE, 115_000)
    # After tests, generated output and docs (65,000), 50,000 remain: repo/src/app/ (70,000
    # not yet freed) is the smallest item covering it; it holds test_ui.py, so it reports
    # 73,000, and the docs and the lone test file become unnecessary.
    assert [(s.path, s.tokens) for s in result] == [
        ("repo/tests/", 20_000),
        ("repo/dist/", 25_000),
        ("repo/src/app/", 73_000),
    ]
    assert result[2].why == "largest folder"


def test_largest_folders_first_when_nothing_covers_alone() -> None:
    docs = [
        ("a/x/1.txt", 100),
        ("a/x/2.txt", 100),
        ("a/y/1.txt", 300),
        ("a/z/1.txt", 50),
        ("b/1.txt", 200),
    ]
    # No folder covers 600 alone: the largest (a/, 550) first, then the smallest covering
    # the remaining 50 (b/1.txt, 200).
    result = fit_suggestions(docs, 600)
    assert [(s.path, s.tokens) for s in result] == [("a/", 550), ("b/1.txt", 200)]
    assert fit_suggestions(docs, 550)[0].path == "a/"


def test_suggestions_never_overlap_and_cover_what_is_needed() -> None:
    for need in (1, 5_000, 33_333, 100_000, 180_000, 230_000):
        result = fit_suggestions(CODEBASE, need)
        files = [f for s in result for f in s.files]
        assert len(files) == len(set(files)), need
        assert freed_total(result) >= need, need
        assert all(s.tokens == sum(dict(CODEBASE)[f] for f in s.files) for s in result)


def test_impossible_need_suggests_nothing() -> None:
    total = sum(t for _, t in CODEBASE)
    assert fit_suggestions(CODEBASE, total + 1) == []
    everything = fit_suggestions(CODEBASE, total)
    assert freed_total(everything) == total
    assert paths(everything) == [
        "repo/tests/",
        "repo/dist/",
        "repo/docs/",
        "repo/src/",
        "repo/README.md",
    ]


def test_whole_corpus_folder_is_never_suggested() -> None:
    docs = [("docs/a.md", 10), ("docs/b.md", 20), ("docs/c/d.md", 30)]
    result = fit_suggestions(docs, 25)
    assert "docs/" not in paths(result)
    assert freed_total(result) >= 25


def test_later_picks_made_unnecessary_are_dropped() -> None:
    docs = [("p/tests/t.py", 10), ("p/src/a.py", 500), ("p/src/b.py", 600), ("p/lib/c.py", 400)]
    result = fit_suggestions(docs, 300)
    # The tests folder frees 10; the smallest item covering the remaining 290 is p/lib/c.py
    # (400; a folder holding one file is offered as the file), which alone frees enough.
    assert [(s.path, s.tokens) for s in result] == [("p/lib/c.py", 400)]
    assert fit_suggestions(docs, 5)[0].path == "p/tests/"
