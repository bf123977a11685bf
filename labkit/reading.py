"""Lesson 23: the course's reading list, generated from the lessons themselves.

Every lesson ends with a "Further reading" list. :func:`collect` parses those
lists (one bullet per work: ``* Authors (year), *Title.* Where.``), merges a
work cited by several lessons into one :class:`Reference`, and files it under
the topic of the first lesson that cites it. ``python -m labkit.reading
--write`` stores the result in ``reading_list.json`` beside this file, so an
installed labkit has it too; a test keeps the file equal to what the lessons
say. :data:`CORE_WORKS` adds foundational works the course rests on that no
lesson cites yet.

The same catalogue audits citations (:func:`audit_citations`): the classic
errors of a reading list are a title that matches no known work, a wrong
year, a wrong venue and an arXiv identifier that belongs to another paper or
repeats another entry's number. Slide 16 of the deck is audited that way.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib.pyplot as plt

from labkit.syllabus import LESSONS, LESSONS_DIR
from labkit.ui import dropdown, interactive_figure
from labkit.validation import ensure_choice

DATA_FILE = Path(__file__).with_name("reading_list.json")

# The topic a lesson's citations are filed under (a work cited by several
# lessons keeps the topic of the first).
LESSON_TOPICS: dict[int, str] = {
    0: "statistics", 1: "alignment", 2: "specification", 3: "robustness", 4: "values and fairness",
    5: "preferences", 6: "preferences", 7: "specification", 8: "interpretability", 9: "robustness",
    10: "values and fairness", 11: "robustness", 12: "values and fairness", 13: "monitoring", 14: "misuse",
    15: "misuse", 16: "preferences", 17: "preferences", 18: "misuse", 19: "values and fairness",
    20: "privacy", 21: "privacy", 22: "monitoring", 23: "alignment",
}


@dataclass(frozen=True)
class Reference:
    """One work: who, when, what, where it appeared, its topic and the lessons that cite it.

    ``where`` is the venue as the lesson gives it (``"NeurIPS"``,
    ``"arXiv:2210.10760 (ICML 2023)"``); ``lessons`` is empty for a core work
    no lesson cites yet, and ``note`` says why to read it then.
    """

    authors: str
    year: int
    title: str
    where: str
    topic: str
    lessons: tuple[int, ...] = ()
    note: str = ""

    @property
    def arxiv(self) -> str | None:
        """The arXiv identifier in ``where`` (``"2210.10760"``), or None."""
        return arxiv_id(self.where)

    @property
    def key(self) -> str:
        return title_key(self.title)

    def citation(self) -> str:
        """``Authors (year). Title. Where.`` with the punctuation a title already ends with kept."""
        title = self.title if self.title[-1:] in "?!." else self.title + "."
        return f"{self.authors} ({self.year}). {title} {self.where}."


# ------------------------------------------------------------- text helpers
_ARXIV = re.compile(r"arXiv:(\d{4}\.\d{4,5})")
# One bullet of a "Further reading" list: "* A. Author, B. Author (2017), *Title.* Venue."
# Every quantifier is bounded by a delimiter the next part cannot contain, so
# matching stays linear in the line's length.
_BULLET = re.compile(r"^\* (?P<authors>[^(]+?) \((?P<year>\d{4})\), \*(?P<title>[^*]+)\*[.,:]?\s*(?P<where>.*)$")


def arxiv_id(text: str) -> str | None:
    """The first arXiv identifier (``YYMM.NNNNN``) in ``text``, or None."""
    match = _ARXIV.search(text)
    return match.group(1) if match else None


def arxiv_year(identifier: str) -> int:
    """The year an arXiv identifier was issued: ``"2108.07258"`` → 2021."""
    if not re.fullmatch(r"\d{4}\.\d{4,5}", identifier or ""):
        raise ValueError(f"identifier must look like 'YYMM.NNNNN', got {identifier!r}")
    return 2000 + int(identifier[:2])


def title_key(title: str) -> str:
    """A title reduced for matching: accents, case, punctuation and spacing ignored."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().casefold()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def _clean(text: str) -> str:
    return text.replace("\\*", "*").strip().rstrip(".").strip()


# ------------------------------------------------------ parsing the lessons
def further_reading_lines(source: str) -> list[str]:
    """The bullet lines of a lesson source's "Further reading" section, without the ``# `` prefix."""
    lines, inside = [], False
    for raw in source.splitlines():
        line = raw[2:] if raw.startswith("# ") else raw.lstrip("#").strip()
        if raw.startswith("# ## "):
            inside = raw.strip() == "# ## Further reading"
            continue
        if inside and raw.startswith("# %%"):
            inside = False
        if inside and line.startswith("* "):
            lines.append(line)
    return lines


def parse_citation(line: str) -> tuple[str, int, str, str] | None:
    """``(authors, year, title, where)`` of one bullet, or None when it is not a citation."""
    match = _BULLET.match(line.strip())
    if match is None:
        return None
    return (match["authors"].strip(), int(match["year"]), _clean(match["title"]), _clean(match["where"]))


def _cited(lessons_dir: Path):
    """(lesson number, authors, year, title, where) for every citation bullet, in lesson order."""
    for lesson in LESSONS:
        path = Path(lessons_dir) / f"{lesson.name}.py"
        if path.exists():
            for line in further_reading_lines(path.read_text(encoding="utf-8")):
                parsed = parse_citation(line)
                if parsed is not None:
                    yield (lesson.number, *parsed)


def collect(lessons_dir: Path = LESSONS_DIR) -> list[Reference]:
    """Every work cited in a lesson's "Further reading", merged by title, in lesson order.

    A work keeps the authors, year and venue of its first citation and the
    topic of the first lesson citing it; :func:`year_conflicts` lists works
    that two lessons date differently.
    """
    merged: dict[str, Reference] = {}
    for number, authors, year, title, where in _cited(lessons_dir):
        known = merged.get(title_key(title))
        if known is None:
            merged[title_key(title)] = Reference(authors, year, title, where, LESSON_TOPICS[number], (number,))
        elif number not in known.lessons:
            merged[known.key] = Reference(known.authors, known.year, known.title, known.where, known.topic,
                                          known.lessons + (number,))
    return list(merged.values())


def year_conflicts(lessons_dir: Path = LESSONS_DIR) -> list[str]:
    """One line per work that two lessons cite with different years (a reading list gives one date per paper)."""
    first: dict[str, tuple[int, int]] = {}
    found = []
    for number, _, year, title, _ in _cited(lessons_dir):
        lesson0, year0 = first.setdefault(title_key(title), (number, year))
        if year != year0:
            found.append(f"{title!r}: {year0} in lesson {lesson0:02d}, {year} in lesson {number:02d}")
    return found


def other_sources(lessons_dir: Path = LESSONS_DIR) -> list[tuple[int, str]]:
    """``(lesson, text)`` for reading-list bullets that are not paper citations (books, standards, software)."""
    found = []
    for lesson in LESSONS:
        path = Path(lessons_dir) / f"{lesson.name}.py"
        if path.exists():
            found += [(lesson.number, _clean(line[2:])) for line in further_reading_lines(path.read_text(encoding="utf-8"))
                      if parse_citation(line) is None and "lesson" not in line.casefold()]
    return found


def write(path: Path = DATA_FILE, lessons_dir: Path = LESSONS_DIR) -> int:
    """Store :func:`collect`'s list as JSON (atomically); return how many works it holds."""
    refs = collect(lessons_dir)
    tmp = Path(path).with_suffix(".json.tmp")
    tmp.write_text(json.dumps([asdict(r) for r in refs], indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return len(refs)


def _load(path: Path = DATA_FILE) -> list[Reference]:
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    return [Reference(**{**row, "lessons": tuple(row["lessons"])}) for row in rows]


# Foundational works the course's topics rest on that no lesson's reading
# list cites (yet): each with what it adds.
CORE_WORKS: list[Reference] = [
    Reference("E. Hubinger, C. van Merwijk, V. Mikulik, J. Skalse, S. Garrabrant", 2019,
              "Risks from Learned Optimization in Advanced Machine Learning Systems", "arXiv:1906.01820", "alignment",
              note="the outer/inner alignment distinction that seed 004 uses, and mesa-optimisation"),
    Reference("L. Langosco, J. Koch, L. Sharkey, J. Pfau, D. Krueger", 2022,
              "Goal Misgeneralization in Deep Reinforcement Learning", "ICML", "alignment",
              note="inner misalignment observed: capable agents pursuing the wrong goal off-distribution"),
    Reference("R. Shah, V. Varma, R. Kumar, M. Phuong, V. Krakovna, J. Uesato, Z. Kenton", 2022,
              "Goal Misgeneralization: Why Correct Specifications Aren't Enough for Correct Goals", "arXiv:2210.01790",
              "alignment", note="the same failure in several systems, with a correct specification"),
    Reference("R. Ngo, L. Chan, S. Mindermann", 2022, "The Alignment Problem from a Deep Learning Perspective",
              "arXiv:2209.00626", "alignment", note="a map of the field's arguments, with references"),
    Reference("D. Hendrycks, N. Carlini, J. Schulman, J. Steinhardt", 2021, "Unsolved Problems in ML Safety",
              "arXiv:2109.13916", "alignment", note="robustness, monitoring, alignment and systemic safety as research agendas"),
    Reference("A. Wei, N. Haghtalab, J. Steinhardt", 2023, "Jailbroken: How Does LLM Safety Training Fail?", "NeurIPS",
              "misuse", note="competing objectives and mismatched generalisation: why the jailbreaks of lesson 18 work"),
    Reference("R. Greenblatt, B. Shlegeris, K. Sachan, F. Roger", 2023,
              "AI Control: Improving Safety Despite Intentional Subversion", "arXiv:2312.06942", "monitoring",
              note="safety measures that hold even if the model is trying to subvert them: monitoring as a protocol"),
    Reference("C. Olah, N. Cammarata, L. Schubert, G. Goh, M. Petrov, S. Carter", 2020, "Zoom In: An Introduction to Circuits",
              "Distill", "interpretability", note="features and circuits as the units of mechanistic interpretability"),
    Reference("N. Elhage et al.", 2021, "A Mathematical Framework for Transformer Circuits", "Transformer Circuits Thread",
              "interpretability", note="the residual stream and attention heads read as circuits, the view lesson 08's refusal direction takes"),
    Reference("N. Elhage et al.", 2022, "Toy Models of Superposition", "arXiv:2209.10652", "interpretability",
              note="why single neurons are polysemantic and directions, not units, carry features"),
    Reference("G. Irving, P. Christiano, D. Amodei", 2018, "AI Safety via Debate", "arXiv:1805.00899", "oversight",
              note="scalable oversight, the topic slide 16's unidentifiable third entry names"),
    Reference("P. Christiano, B. Shlegeris, D. Amodei", 2018, "Supervising Strong Learners by Amplifying Weak Experts",
              "arXiv:1810.08575", "oversight", note="iterated amplification"),
    Reference("J. Leike, D. Krueger, T. Everitt, M. Martic, V. Maini, S. Legg", 2018,
              "Scalable Agent Alignment via Reward Modeling: a Research Direction", "arXiv:1811.07871", "oversight",
              note="recursive reward modelling, the research programme behind lessons 05 and 16"),
    Reference("S. R. Bowman et al.", 2022, "Measuring Progress on Scalable Oversight for Large Language Models",
              "arXiv:2211.03540", "oversight", note="how to test oversight methods with today's models"),
    Reference("D. Amodei, C. Olah, J. Steinhardt, P. Christiano, J. Schulman, D. Mané", 2016, "Concrete Problems in AI Safety",
              "arXiv:1606.06565", "alignment", note="slide 16's second entry: the five problems most lessons of this course address"),
    Reference("R. Bommasani et al.", 2021, "On the Opportunities and Risks of Foundation Models", "arXiv:2108.07258", "alignment",
              note="slide 16's first entry: a long survey; read its sections on misuse, security and alignment"),
]


def _with_core(from_lessons: list[Reference]) -> list[Reference]:
    cited = {r.key for r in from_lessons}
    return from_lessons + [r for r in CORE_WORKS if r.key not in cited]


READING: list[Reference] = _with_core(_load()) if DATA_FILE.exists() else list(CORE_WORKS)
TOPICS: list[str] = sorted({r.topic for r in READING})

# What to read next, per topic, after the lesson's own list.
NEXT_STEPS: dict[str, str] = {
    "statistics": "Brown, Cai and DasGupta on binomial intervals, then any result table of this course: check its interval.",
    "alignment": "Ngo, Chan and Mindermann for the map, then Hubinger et al. and the goal-misgeneralisation papers.",
    "specification": "Krakovna et al.'s list of examples, then Skalse et al.'s definition of reward hacking.",
    "robustness": "Madry et al., then Wong et al. on fast adversarial training and a certified method's paper.",
    "values and fairness": "Kleinberg et al. and Chouldechova together, then Barocas, Hardt and Narayanan's book.",
    "preferences": "Christiano et al. 2017, Ouyang et al. 2022, then DPO and Gao et al. on over-optimisation.",
    "interpretability": "Sundararajan et al. and Adebayo et al., then the circuits papers and Arditi et al.'s refusal direction.",
    "monitoring": "Page's CUSUM paper, then Greenblatt et al. on control: monitoring against an adversary.",
    "misuse": "Zou et al.'s GCG, Wei et al.'s Jailbroken, then XSTest for the price of refusing too much.",
    "privacy": "Abadi et al. on DP-SGD, then Carlini et al. 2022 on membership inference measured at low FPR.",
    "oversight": "Irving et al. on debate, then Bowman et al. on measuring oversight.",
}


def references(topic: str = "all", lesson: int | None = None) -> list[Reference]:
    """References for ``topic`` (one of :data:`TOPICS` or ``"all"``), optionally only those ``lesson`` cites; oldest first."""
    ensure_choice("topic", topic, ["all", *TOPICS])
    if lesson is not None:
        ensure_choice("lesson", lesson, [l.number for l in LESSONS])
    chosen = [r for r in READING if (topic == "all" or r.topic == topic) and (lesson is None or lesson in r.lessons)]
    return sorted(chosen, key=lambda r: (r.year, r.authors))


# ------------------------------------------------------------ the audit
PROBLEMS = ("unknown title", "wrong year", "wrong venue", "wrong arXiv id", "repeated arXiv number")


def _accepted_years(ref: Reference) -> set[int]:
    """A work may be dated by its arXiv year or by the year of its venue."""
    years = {ref.year}
    if ref.arxiv:
        years.add(arxiv_year(ref.arxiv))
    years.update(int(y) for y in re.findall(r"\b(19\d\d|20\d\d)\b", ref.where))
    return years


def _venue_words(where: str) -> set[str]:
    without_ids = _ARXIV.sub(" ", where)
    return {w for w in re.findall(r"[a-z]+", without_ids.casefold()) if len(w) > 2}


def audit_citations(citations: list[dict], catalog: list[Reference] | None = None) -> list[tuple[str, ...]]:
    """Find the classic errors in a list of citations, checked against a catalogue of known works.

    Rules, per citation (``{"title", "year", "where"}``; ``year`` may be None):

    - ``"unknown title"``: the title (case, accents and punctuation ignored)
      matches no work of the catalogue; nothing else is checked for it, except
      the repeated-number rule;
    - ``"wrong year"``: the year is neither the work's year, its arXiv year,
      nor a year named in its venue (ICML 2023 for an arXiv 2022 paper);
    - ``"wrong venue"``: ``where`` names a venue (anything besides an arXiv
      id) that shares no word with the work's venue;
    - ``"wrong arXiv id"``: ``where`` gives an arXiv id and the work has a
      different one;
    - ``"repeated arXiv number"``: its arXiv id has the same number after the
      dot as another citation's id in the list but another month (a copy-paste
      sign: slide 16's third entry).

    Parameters
    ----------
    citations : list of dict
        Each with keys ``title`` (str), ``year`` (int or None) and ``where`` (str).
    catalog : list of Reference, optional
        The known works; :data:`READING` by default.

    Returns
    -------
    list of tuple of str
        For each citation, its problems in the order of :data:`PROBLEMS`; an
        empty tuple when it checks out.
    """
    if not isinstance(citations, (list, tuple)):
        raise TypeError(f"citations must be a list of dicts, got {type(citations).__name__}")
    for i, c in enumerate(citations):
        if not isinstance(c, dict) or not {"title", "year", "where"} <= set(c):
            raise ValueError(f"citations[{i}] must be a dict with keys 'title', 'year' and 'where', got {c!r}")
    by_key = {r.key: r for r in (READING if catalog is None else catalog)}
    ids = [arxiv_id(str(c["where"])) for c in citations]
    results = []
    for c, own_id in zip(citations, ids):
        found: set[str] = set()
        if own_id and any(other and other != own_id and other.split(".")[1] == own_id.split(".")[1] for other in ids):
            found.add("repeated arXiv number")
        ref = by_key.get(title_key(str(c["title"])))
        if ref is None:
            found.add("unknown title")
        else:
            if c["year"] is not None and int(c["year"]) not in _accepted_years(ref):
                found.add("wrong year")
            venue = _venue_words(str(c["where"]))
            if venue and not venue & _venue_words(ref.where):
                found.add("wrong venue")
            if own_id and ref.arxiv and own_id != ref.arxiv:
                found.add("wrong arXiv id")
        results.append(tuple(p for p in PROBLEMS if p in found))
    return results


# Slide 16 as printed in the deck: titles and identifiers, no years.
SLIDE_16 = [
    {"title": "On the Opportunities and Risks of Foundation Models", "year": None, "where": "arXiv:2108.07258"},
    {"title": "Concrete Problems in AI Safety", "year": None, "where": "arXiv:1606.06565"},
    {"title": "Scalable Oversight of AI Systems via Selective Delegation", "year": None, "where": "arXiv:1802.07258"},
]


# ------------------------------------------------------------ the figure
def plot_timeline(topic: str = "all") -> plt.Figure:
    """Every reference as a dot by year and topic; the selected topic highlighted."""
    ensure_choice("topic", topic, ["all", *TOPICS])
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for row, name in enumerate(TOPICS):
        refs = [r for r in READING if r.topic == name]
        on = topic in ("all", name)
        for cited, marker in ((True, "o"), (False, "D")):
            years = [r.year for r in refs if bool(r.lessons) == cited]
            ax.scatter(years, [row] * len(years), s=60 if on else 25, alpha=1.0 if on else 0.25, marker=marker,
                       color=f"C{row % 10}", zorder=3, label=None)
    ax.scatter([], [], marker="o", color="grey", label="cited by a lesson")
    ax.scatter([], [], marker="D", color="grey", label="core work, not yet cited")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_yticks(range(len(TOPICS)), TOPICS)
    ax.set_xlabel("year")
    ax.grid(axis="x", alpha=0.3)
    shown = len(references(topic))
    ax.set_title(f"{'all topics' if topic == 'all' else topic}: {shown} reference{'s' if shown != 1 else ''}")
    fig.tight_layout()
    return fig


def timeline_widget():
    """Lesson 23's widget: a topic of :data:`TOPICS` (or all) redrawing :func:`plot_timeline`.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`, showing every topic.
    """
    return interactive_figure(plot_timeline, topic=dropdown("topic", ["all", *TOPICS]))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m labkit.reading", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="regenerate reading_list.json from lessons/")
    group.add_argument("--check", action="store_true", help="exit 1 when reading_list.json is out of date")
    args = parser.parse_args(argv)
    if args.write:
        print(f"{DATA_FILE.name}: {write()} works from the lessons' reading lists")
        return 0
    stale = not DATA_FILE.exists() or _load() != collect()
    print(f"{DATA_FILE.name} is {'out of date: run python -m labkit.reading --write' if stale else 'up to date'}")
    return int(stale)


__all__ = ["Reference", "READING", "TOPICS", "CORE_WORKS", "NEXT_STEPS", "SLIDE_16", "PROBLEMS", "LESSON_TOPICS",
           "arxiv_id", "arxiv_year", "title_key", "parse_citation", "further_reading_lines", "collect", "year_conflicts", "other_sources",
           "write",
           "references", "audit_citations", "plot_timeline", "timeline_widget"]

if __name__ == "__main__":
    raise SystemExit(main())
