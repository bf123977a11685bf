"""The course site (make site): every built lesson has a page and a solution page,
every internal link resolves, nothing is executed, and a real browser shows it."""
from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import pytest

import build_site
from labkit import syllabus

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "build" / "browser"
_LINK = re.compile(r'(?:href|src)="([^"#?]*)[^"]*"')


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "site"
    lessons = build_site.build(out, jobs="2")
    return out, lessons


@pytest.mark.time_limit(600)
def test_every_lesson_and_solution_has_a_page(site):
    out, lessons = site
    expected = [lesson.name for lesson in syllabus.LESSONS if (ROOT / "notebooks" / f"{lesson.name}.ipynb").exists()]
    assert [lesson.name for lesson in lessons] == expected and expected
    for name in expected:
        assert (out / "lessons" / f"{name}.html").exists(), name
        assert (out / "solutions" / f"{name}.html").exists(), name
    home = (out / "index.html").read_text()
    # The table of contents follows the syllabus, lessons then the solutions section.
    order = [home.index(f'href="lessons/{name}.html"') for name in expected]
    assert order == sorted(order)
    assert 'href="solutions/index.html"' in home
    planned = [lesson for lesson in syllabus.LESSONS if lesson.name not in expected]
    for lesson in planned:
        assert f"{lesson.title} (planned)" in home


def test_internal_links_resolve(site):
    out, _ = site
    broken = []
    for page in out.rglob("*.html"):
        if "_static" in page.parts:  # the theme's own template fragments, not pages
            continue
        for target in _LINK.findall(page.read_text(encoding="utf-8")):
            if not target or re.match(r"^[a-z]+:", target):  # http:, https:, mailto:, data:
                continue
            if not (page.parent / urllib.parse.unquote(target)).resolve().exists():
                broken.append(f"{page.relative_to(out)} -> {target}")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:20])


def test_stored_outputs_are_shown_not_recomputed(site):
    out, lessons = site
    page = (out / "lessons" / f"{lessons[0].name}.html").read_text(encoding="utf-8")
    assert "[not attempted yet]" in page  # the student notebook's stored check output
    assert "<img" in page  # its stored figures
    assert 'nb_execution_mode = "off"' in (out.parent / "site-src" / "conf.py").read_text()


def test_the_site_in_a_real_browser(site, browser):
    out, lessons = site
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto((out / "index.html").as_uri())
    assert "Syllabus" in page.locator("main").inner_text()
    page.screenshot(path=str(SHOTS / "site_home.png"))
    page.locator(f'nav a[href="lessons/{lessons[0].name}.html"]').first.click()
    page.wait_for_load_state()
    assert page.url.endswith(f"lessons/{lessons[0].name}.html")
    text = page.locator("main").inner_text()
    assert lessons[0].title.split(":")[0] in text or lessons[0].slug.split("_")[0].lower() in text.lower()
    figures = page.locator('main img[src^="../_images/"]')  # stored outputs (the badges are external)
    assert figures.count() >= 1
    figures.first.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=figures.first.element_handle(),
                           timeout=30_000)
    page.screenshot(path=str(SHOTS / "site_lesson.png"), full_page=False)
    page.close()
