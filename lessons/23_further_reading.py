# %% [markdown]
# # 23 · Further reading
#
# The slide deck ends with three papers. This lesson audits that list, then
# builds the course's reading list *from the lessons themselves*: every work
# any lesson cites under "Further reading", grouped by topic and lesson, plus
# the foundational works the course rests on that no lesson cites yet.
#
# **In this lesson you will**
# 1. audit a reading list the way you would review code, and write the audit (exercise);
# 2. see where each lesson's methods come from, by topic and by year;
# 3. pick what to read next.

# %%
import pandas as pd

import labkit
from labkit import reading, syllabus
from labkit.exercises import card, check

device = labkit.setup(seed=0)
pd.set_option("display.width", 120, "display.max_colwidth", 70)

# %% [markdown]
# ## 1. Auditing slide 16
#
# A reference is a pointer; like any pointer it can dangle. Slide 16 gives a
# title and an arXiv identifier for each of its three papers, and no years.
# An arXiv identifier `YYMM.NNNNN` says when the paper was submitted (year and
# month) and its number within that month. Here is the slide as data, audited
# against the course's catalogue of works it can identify:

# %%
audit = reading.audit_citations(reading.SLIDE_16)
for entry, problems in zip(reading.SLIDE_16, audit):
    ident = reading.arxiv_id(entry["where"])
    print(f"- {entry['title']} ({entry['where']}, issued {reading.arxiv_year(ident)}-{ident[2:4]})")
    print(f"    {', '.join(problems) if problems else 'checks out'}")

# %% [markdown]
# The first two entries name real papers under their real identifiers
# (Bommasani et al. 2021; Amodei et al. 2016). The third title matches no work
# we can identify, and its number, 07258, is the first entry's number under
# another month: the classic trace of a copied-and-edited line (the audit
# flags both entries of the pair; the first is vindicated by its title). What
# arXiv:1802.07258 really is cannot be checked offline, so the course does not
# guess: it treats the entry as unverified and lists established work on
# *scalable oversight* (debate, amplification, recursive reward modelling and
# the measurement of oversight) in its place, under the topic "oversight"
# below.

# %% [markdown]
# ### Exercise: audit a citation list

# %%
card("23.audit_citations")

# %% [markdown]
# Write `audit_citations(citations, catalog)`. Each citation is a dict with
# `title`, `year` (an int, or `None` when not given) and `where` (a venue and/or
# `arXiv:YYMM.NNNNN`). `catalog` is a list of `reading.Reference`, the works
# you know. For each citation return a tuple of its problems, in this order:
#
# 1. `"unknown title"`: `reading.title_key(title)` matches no catalogue work's
#    `.key` (then skip rules 2–4);
# 2. `"wrong year"`: the year is none of the work's `.year`, the year of its
#    arXiv id (`reading.arxiv_year`), or a four-digit year written in its
#    `.where` (an arXiv 2022 paper published at ICML 2023 may be cited either way);
# 3. `"wrong venue"`: the citation's `where`, arXiv ids removed, has words of
#    three or more letters (case ignored) and shares none with the work's `.where`;
# 4. `"wrong arXiv id"`: the citation gives an arXiv id (`reading.arxiv_id`)
#    and the work has a different one;
# 5. `"repeated arXiv number"`: another citation in the list has an arXiv id
#    with the same number after the dot but a different month.
#
# The order is `reading.PROBLEMS`. Raise `TypeError` when `citations` is not a
# list.

# %%
import re


def audit_citations(citations, catalog):
    ### BEGIN SOLUTION
    if not isinstance(citations, (list, tuple)):
        raise TypeError("citations must be a list of dicts")
    words = lambda text: {w for w in re.findall(r"[a-z]+", re.sub(r"arXiv:\d{4}\.\d{4,5}", " ", text).casefold())
                          if len(w) > 2}
    known = {ref.key: ref for ref in catalog}
    ids = [reading.arxiv_id(c["where"]) for c in citations]
    out = []
    for c, own in zip(citations, ids):
        problems = set()
        if own and any(o and o != own and o.split(".")[1] == own.split(".")[1] for o in ids):
            problems.add("repeated arXiv number")
        ref = known.get(reading.title_key(c["title"]))
        if ref is None:
            problems.add("unknown title")
        else:
            years = {ref.year} | {int(y) for y in re.findall(r"\b(19\d\d|20\d\d)\b", ref.where)}
            if ref.arxiv:
                years.add(reading.arxiv_year(ref.arxiv))
            if c["year"] is not None and c["year"] not in years:
                problems.add("wrong year")
            if words(c["where"]) and not words(c["where"]) & words(ref.where):
                problems.add("wrong venue")
            if own and ref.arxiv and own != ref.arxiv:
                problems.add("wrong arXiv id")
        out.append(tuple(p for p in reading.PROBLEMS if p in problems))
    return out
    ### END SOLUTION

# %%
check("23.audit_citations", audit_citations)

# %% [markdown]
# The rules are deliberately mechanical: each catches one error reviewers
# actually find (a preprint year mixed up with a conference year is *not* an
# error, so rule 2 accepts both). What they cannot catch is a real paper cited
# for a claim it does not make; for that you read the paper, which is what the
# rest of this lesson is for.

# %% [markdown]
# ## 2. The reading list, generated from the lessons
#
# `reading.collect()` parses the "Further reading" section of every lesson
# (one bullet per work: authors, year, *title*, venue) and merges works that
# several lessons cite. The list below is therefore exactly what the lessons
# say, and it grows when a lesson does. A test checks that no two lessons give
# one paper different years.

# %%
print("year conflicts between lessons:", reading.year_conflicts() or "none")
table = pd.DataFrame([{"topic": r.topic, "year": r.year, "authors": r.authors, "title": r.title, "where": r.where,
                       "lessons": ", ".join(f"{n:02d}" for n in r.lessons) or "core"} for r in reading.READING])
cited = table[table.lessons != "core"]
print(f"{len(cited)} works cited by {cited.lessons.str.split(', ').explode().nunique()} lessons; "
      f"{len(table) - len(cited)} core works added below")
print(cited.groupby("topic").size().rename("works").to_string())

# %% [markdown]
# ### By topic and year
#
# Choose a topic: the timeline highlights its works (circles: cited by a
# lesson; diamonds: core works no lesson cites yet).

# %% tags=["nbval-ignore-output"]
reading.timeline_widget()

# %%
for topic in reading.TOPICS:
    print(f"\n{topic.upper()}  (next: {reading.NEXT_STEPS[topic]})")
    for ref in reading.references(topic):
        used = "lessons " + ", ".join(f"{n:02d}" for n in ref.lessons) if ref.lessons else "core, not yet cited"
        print(f"  {ref.citation()} [{used}]")

# %% [markdown]
# ### By lesson
#
# The same works, by the lesson that cites them, for a reader who wants the
# sources behind one lesson; lessons still being written show as planned.

# %%
for lesson in syllabus.LESSONS:
    refs = reading.references(lesson=lesson.number)
    state = "" if syllabus.available(lesson) else " (planned)"
    names = "; ".join(f"{r.authors.split(',')[0]} {r.year}" for r in refs) or "none"
    print(f"{lesson.number:02d} {lesson.title}{state}\n    {names}")

# %% [markdown]
# ## 3. Core works no lesson cites yet
#
# The course's topics rest on a few works that no lesson's list names: the
# evidence for the inner-alignment worry of Hubinger et al. (2019, which lesson
# 01 cites) that goal misgeneralisation provides, why jailbreaks work, AI
# control, the circuits view of interpretability, and the scalable-oversight
# work that replaces slide 16's third entry. Each comes with what it adds (a
# core work disappears from this list once a lesson cites it):

# %%
cited_keys = {reading.title_key(t) for t in cited.title}
for ref in reading.CORE_WORKS:
    if ref.key not in cited_keys:
        print(f"- {ref.citation()}\n    {ref.note}")

# %% [markdown]
# Books, standards and software the lessons point to, which are not papers:

# %%
for number, text in reading.other_sources():
    print(f"- [{number:02d}] {text}")

# %% [markdown]
# ## 4. Where to go next
#
# * **Read one method paper per lesson you found hardest**, and re-derive the
#   equation that labkit cites next to its code.
# * **Reproduce one result at a larger scale**: the course's models have a
#   `large` configuration for a GPU (`labkit.lm.train.get_config("large")`).
# * **Take the audit habit with you**: before citing a paper, check its title,
#   year, venue and identifier, and the claim you cite it for.
#
# ## Key takeaways
# * Check a reading list like code: every entry should resolve, and a copied
#   identifier is as easy to spot as a copied line.
# * A reading list generated from the lessons cannot drift from them; one
#   date per paper is a test, not a hope.
# * Every method in this course has a primary source; labkit cites it next to
#   the implementation.
#
# ## Further reading
# The whole lesson is the course's reading list; start with the "next" line of
# the topic you care about most.
