import dataclasses

import pytest
from hypothesis import given, settings

from labkit import exercises, reading
from labkit.syllabus import LESSONS, LESSONS_DIR
from widget_driver import draw_and_check, values_strategy


def test_reading_list_file_equals_what_the_lessons_cite():
    # Regenerate with: python -m labkit.reading --write
    assert reading._load() == reading.collect(), "run `python -m labkit.reading --write`"


def test_no_two_lessons_date_one_paper_differently():
    assert reading.year_conflicts() == []


def test_every_reference_points_at_real_lessons_and_is_sorted():
    numbers = {lesson.number for lesson in LESSONS}
    for ref in reading.READING:
        assert set(ref.lessons) <= numbers, ref
        assert 1900 <= ref.year <= 2026, ref
        assert ref.topic in reading.NEXT_STEPS, ref
    years = [r.year for r in reading.references("all")]
    assert years == sorted(years)
    assert sum(len(reading.references(t)) for t in reading.TOPICS) == len(reading.READING)
    assert all(r.note for r in reading.CORE_WORKS)


def test_parser_reads_the_lessons_bullet_format_and_skips_other_bullets():
    line = "* L. Gao, J. Schulman, J. Hilton (2022), *Scaling Laws for Reward Model Overoptimization.* arXiv:2210.10760 (ICML 2023)."
    assert reading.parse_citation(line) == ("L. Gao, J. Schulman, J. Hilton", 2022,
                                            "Scaling Laws for Reward Model Overoptimization", "arXiv:2210.10760 (ICML 2023)")
    assert reading.parse_citation("* A. Karpathy, *nanoGPT* (github.com/karpathy/nanoGPT).") is None
    source = "# ## Further reading\n# * A (2001), *T.* V.\n# %%\nx = 1\n# * B (2002), *U.* W.\n"
    assert reading.further_reading_lines(source) == ["* A (2001), *T.* V."]


def test_parser_stays_fast_on_hostile_lines():
    import time

    start = time.perf_counter()
    reading.parse_citation("* " + "a (" * 20000 + "(2001), *" + "*" * 20000)
    assert time.perf_counter() - start < 0.5


def test_merge_keeps_every_citing_lesson(tmp_path):
    for lesson, year in ((LESSONS[5], 2022), (LESSONS[16], 2022), (LESSONS[2], 2023)):
        (tmp_path / f"{lesson.name}.py").write_text(
            f"# ## Further reading\n# * L. Gao (2022), *Scaling Laws.* ICML.\n# * X ({year}), *Other Paper.* V.\n")
    refs = {r.title: r for r in reading.collect(tmp_path)}
    assert refs["Scaling Laws"].lessons == (2, 5, 16)
    assert refs["Scaling Laws"].topic == reading.LESSON_TOPICS[2]
    assert reading.year_conflicts(tmp_path) == ["'Other Paper': 2023 in lesson 02, 2022 in lesson 05",
                                                "'Other Paper': 2023 in lesson 02, 2022 in lesson 16"]


def test_slide_16_audit():
    assert reading.audit_citations(reading.SLIDE_16) == [("repeated arXiv number",), (),
                                                          ("unknown title", "repeated arXiv number")]


def test_audit_rules_one_by_one():
    gao = reading.Reference("L. Gao", 2022, "Scaling Laws for Reward Model Overoptimization",
                            "arXiv:2210.10760 (ICML 2023)", "preferences")
    audit = lambda title, year, where: reading.audit_citations([{"title": title, "year": year, "where": where}], [gao])[0]
    assert audit(gao.title, 2022, "arXiv:2210.10760") == ()
    assert audit(gao.title.lower(), 2023, "ICML") == ()
    assert audit(gao.title, 2021, "ICML") == ("wrong year",)
    assert audit(gao.title, 2022, "NeurIPS") == ("wrong venue",)
    assert audit(gao.title, None, "arXiv:2210.10761") == ("wrong arXiv id",)
    assert audit("Scaling Laws", 2022, "ICML") == ("unknown title",)
    with pytest.raises(TypeError, match="citations must be a list"):
        reading.audit_citations({"title": "x"})
    with pytest.raises(ValueError, match=r"citations\[0\] must be a dict"):
        reading.audit_citations([("x", 2020, "ICML")])


def test_arxiv_helpers():
    assert reading.arxiv_id("see arXiv:1606.06565 (2016)") == "1606.06565"
    assert reading.arxiv_id("NeurIPS") is None
    assert reading.arxiv_year("1802.07258") == 2018
    with pytest.raises(ValueError, match="identifier must look like"):
        reading.arxiv_year("18.07258")


# Plausible wrong answers the exercise's check must catch.
def _only_own_year(citations, catalog):
    """Accepts only the work's year: rejects an arXiv paper cited by its conference year."""
    out = reading.audit_citations(citations, catalog)
    fixed = []
    for c, problems in zip(citations, out):
        ref = {r.key: r for r in catalog}.get(reading.title_key(c["title"]))
        bad = ref is not None and c["year"] is not None and c["year"] != ref.year
        fixed.append(tuple(p for p in reading.PROBLEMS if p in set(problems) - {"wrong year"} | ({"wrong year"} if bad else set())))
    return fixed


def _repeat_flags_later_only(citations, catalog):
    """Flags a repeated number only on the later entry."""
    out = [list(p) for p in reading.audit_citations(citations, catalog)]
    for i, problems in enumerate(out):
        ident = reading.arxiv_id(citations[i]["where"])
        earlier = [reading.arxiv_id(c["where"]) for c in citations[:i]]
        if "repeated arXiv number" in problems and not any(
                e and e != ident and e.split(".")[1] == ident.split(".")[1] for e in earlier):
            problems.remove("repeated arXiv number")
    return [tuple(p) for p in out]


def _exact_title(citations, catalog):
    """Matches titles exactly, without normalising case and punctuation."""
    exact = {r.title for r in catalog}
    out = reading.audit_citations(citations, catalog)
    return [("unknown title",) + tuple(p for p in problems if p == "repeated arXiv number")
            if c["title"] not in exact else problems for c, problems in zip(citations, out)]


@pytest.mark.parametrize("wrong", [_only_own_year, _repeat_flags_later_only, _exact_title], ids=lambda f: f.__name__)
def test_exercise_check_catches_plausible_wrong_answers(wrong):
    assert exercises.run_check("23.audit_citations", wrong).status == "failed"


def test_unknown_topic_is_a_clear_error():
    with pytest.raises(ValueError, match="topic must be one of"):
        reading.references("astrology")
    with pytest.raises(ValueError, match="lesson must be one of"):
        reading.references(lesson=99)


WIDGET = reading.timeline_widget()


@settings(max_examples=20, deadline=None)
@given(values_strategy(WIDGET))
def test_timeline_widget_full_range(values):
    draw_and_check(WIDGET, values)
