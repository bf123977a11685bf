# %% [markdown]
# # 23 · Further reading
#
# The slide deck ends with three papers. This lesson checks that list, then
# gives the primary sources behind every lesson of the course, grouped by topic,
# with the lesson each one supports.
#
# **In this lesson you will**
# 1. audit a reading list before trusting it;
# 2. find the paper behind each lesson's method;
# 3. pick a next step by topic.

# %%
import labkit
from labkit import reading

device = labkit.setup(seed=0)

# %% [markdown]
# ## 1. Auditing slide 16
#
# A reference list is code for the reader's time: it should resolve. Two of the
# deck's three entries match the papers they name; the third title does not
# correspond to a paper we can identify, so the list below replaces it with
# established work on *scalable oversight* (debate, amplification, and the
# measurement of oversight with language models).

# %%
for title, where, verdict in reading.SLIDE_16_AUDIT:
    print(f"- {title} ({where})\n    {verdict}")

# %% [markdown]
# ## 2. The reading list by topic
#
# Choose a topic: the timeline highlights its papers, and the table below the
# widget lists every reference with the lessons it supports.

# %% tags=["nbval-ignore-output"]
reading.timeline_widget()

# %%
for topic in reading.TOPICS:
    print(f"\n{topic.upper()}")
    for ref in reading.references(topic):
        used = ", ".join(f"{n:02d}" for n in ref.lessons)
        print(f"  {ref.authors} ({ref.year}). {ref.title}. {ref.where}. [lessons {used}]")

# %% [markdown]
# ## 3. Where to go next
#
# * **Build on the course's model organism**: lessons 15 to 22 train, attack and
#   evaluate a tiny assistant; the same code runs a larger config on a GPU.
# * **Read one method paper per lesson you found hardest**, and re-derive the
#   equation that labkit cites next to its code.
# * **Reproduce one result at a larger scale** using the `large` configs.
#
# ## Key takeaways
# * Check a reading list like code: every entry should resolve to a real source.
# * Every method in this course has a primary source; labkit cites it next to the implementation.
