import pytest
from hypothesis import given, settings

from labkit import reading
from labkit.syllabus import LESSONS
from widget_driver import draw_and_check, values_strategy


def test_every_reference_points_at_real_lessons_and_is_sorted():
    numbers = {lesson.number for lesson in LESSONS}
    for ref in reading.READING:
        assert set(ref.lessons) <= numbers, ref
        assert 1950 <= ref.year <= 2026, ref
    years = [r.year for r in reading.references("all")]
    assert years == sorted(years)
    assert sum(len(reading.references(t)) for t in reading.TOPICS) == len(reading.READING)


def test_unknown_topic_is_a_clear_error():
    with pytest.raises(ValueError, match="topic must be one of"):
        reading.references("astrology")


WIDGET = reading.timeline_widget()


@settings(max_examples=20, deadline=None)
@given(values_strategy(WIDGET))
def test_timeline_widget_full_range(values):
    draw_and_check(WIDGET, values)
