# %% [markdown]
# # 01 · Introduction: never execute text
#
# Safety alignment means an AI system does what people actually want, not just
# what its inputs literally say. This lesson starts where the course's first
# slide starts, with a safety check in front of a command, and shows why the
# check has to guard a **structured action**, never a string.
#
# **In this lesson you will**
# 1. name what *helpful*, *harmless* and *honest* ask of an assistant, and tell *outer* from *inner* alignment with a concrete example;
# 2. find the defects in the slide's `demonstrate_safety_alignment`, and demonstrate the silent ones;
# 3. use labkit's corrected pattern: parse the request into an action, check it against a default-deny policy with reasons, execute through a dispatch table;
# 4. attack the naive check and the gate with the same injection attempts, side by side;
# 5. reproduce, in miniature, indirect prompt injection (Greshake et al. 2023).

# %%
import matplotlib.pyplot as plt
import numpy as np

import labkit
from labkit import gate
from labkit.exercises import card, check

device = labkit.setup(seed=0)

# %% [markdown]
# ## 1. Helpful, harmless, honest; outer and inner alignment
#
# Askell et al. (2021) describe an aligned assistant as
# * **helpful**: it does the task the user meant, efficiently, and asks when unsure;
# * **harmless**: it does not cause or assist harm to the user or to others, even when asked;
# * **honest**: what it says is true and calibrated, and it does not hide what it is doing.
#
# These pull against each other. A gate that refuses everything is perfectly
# harmless and useless; below we measure both sides of every gate: the share
# of harmful attempts that pass, and the share of benign requests served.
#
# The companion guide (seed 004) splits alignment in two (Hubinger et al. 2019):
# * **outer alignment**: is the objective we wrote down the one we want?
# * **inner alignment**: does the trained system actually pursue that objective, or something that merely agreed with it during training?
#
# A concrete example. A support agent is rewarded for *open tickets closed per
# hour*. Deleting a ticket closes it fastest, so an agent that optimises the
# written objective perfectly deletes tickets: an **outer** failure (the reward
# was wrong). Now fix the reward to *tickets resolved, as confirmed by the
# customer*, and train the agent on tickets whose fix, as it happens, was always
# the first article of the help centre. "Send the article that answers the
# question" and "send the first article" earned exactly the same reward in
# training. Deploy it after the help centre is reorganised: the agent still
# reads the ticket, writes a fluent, polite reply and links an article, all
# competently, and links the first one. Its skills carried over; its goal did
# not. That is **goal misgeneralisation**, the textbook inner failure
# (Langosco et al. 2022; Shah et al. 2022): the right objective, a wrong learned
# goal that agreed with it on every training example. (Langosco et al.'s agent
# learned "go to the right end of the level" because the coin was always there;
# moved, the coin is ignored by an agent that still runs and jumps well.)
#
# Compare an agent that writes gibberish on its first French ticket because it
# never saw French: that is a **capability** failure, it pursues nothing
# competently. Gibberish is easy to notice; a fluent reply with the wrong link
# looks like success, which is what makes goal misgeneralisation dangerous.

# %%
tickets = {"resolve properly": (3, 3), "delete the ticket": (12, 0)}  # (closed per hour, actually helped)
for strategy, (closed, helped) in tickets.items():
    print(f"{strategy:<18} reward 'closed/hour' = {closed:>2}   customers helped = {helped}")

# %% [markdown]
# The written reward prefers deletion four to one, while the thing we wanted
# prefers the other strategy. The rest of this lesson is about one defence that
# holds whichever way alignment fails: **limit what any instruction can make the
# agent do.**
#
# ## 2. The slide's approach
#
# The slide reads a command with `input()`, asks `is_safe(command)`, and calls
# `execute_command(command)`. Both helpers are `pass`. Here is the pattern with
# the `is_safe` a reader typically fills in, a substring blocklist (labkit keeps
# it as `gate.naive_is_safe` so the lesson can attack it). We never hand the
# text to a shell; `gate.shell_view` shows, with Python's `shlex` tokenizer,
# what a shell *would* run.

# %%
def slide_is_safe(command):
    pass  # as on the slide

def slide_demo(command, is_safe):
    if is_safe(command):
        return "EXECUTE: " + command
    return "Sorry, that command is not allowed for safety reasons."

print(slide_demo("read workspace/notes.txt", slide_is_safe))
print("naive blocklist:", gate.NAIVE_BLOCKLIST)

# %% [markdown]
# ## 3. Bug hunt
#
# 1. **`is_safe` returns `None`** (silent). `None` is falsy, so the slide's
#    program refuses everything (output above) and looks "safe" while being
#    useless; the first person to "fix" it with `return True` makes it run anything.
# 2. **It executes text.** `execute_command(command)` hands a string to an
#    interpreter; the check and the interpreter disagree about what the text
#    means. Any blocklist loses that race (silent, demonstrated next).
# 3. **Default allow.** Whatever the blocklist does not name runs. A safe
#    design lists what is *allowed* and denies the rest.
# 4. **No reasons, no structure.** The refusal says nothing about which rule
#    fired, so nobody can audit or fix the policy.
# 5. **`input()` in library code** blocks every notebook, test and server that calls it.
#
# Bug 2, demonstrated: three strings the blocklist passes, and what a shell would see.

# %%
for command in ["r''m -rf workspace", "read workspace/notes.txt;rm${IFS}-rf /", "Delete 3"]:
    print(f"{command!r:<45} passes blocklist: {gate.naive_is_safe(command)!s:<5} shell sees: {gate.shell_view(command)}")

# %% [markdown]
# The shell removes the quotes in `r''m` and runs `rm`; `${IFS}` expands to a
# space inside the shell, after the check has looked; `Delete` differs from
# `delete` only in case. Meanwhile the blocklist blocks the benign `delete 1`
# (a user removing their own draft). It is wrong in both directions.
#
# ### Exercise: break a blocklist yourself
#
# Patching the blocklist does not close the gap. Given *any* blocklist,
# write `find_bypass(blocklist)` returning a command that
# `gate.naive_is_safe(command, blocklist)` passes and in which a shell would run
# `rm -rf workspace` (`gate.shell_runs(command, gate.RM_WORKSPACE)`, by `gate.shell_view`). The check
# tries blocklists that name `rm`, quotes and backslashes in turn; any command
# that meets the specification passes, there is no single right answer.
# (Hint: try several spellings of `rm` and return the first that gets through.)

# %%
card("01.find_bypass")

# %%
def find_bypass(blocklist):
    ### BEGIN SOLUTION
    for rm in ("rm", "r''m", 'r""m', "r\\m", "'r'm", '"r"m'):
        command = f"{rm} -rf workspace"
        if gate.naive_is_safe(command, blocklist) and gate.shell_runs(command, gate.RM_WORKSPACE):
            return command
    raise ValueError("no spelling found")
    ### END SOLUTION

# %%
check("01.find_bypass", find_bypass)

# %% [markdown]
# Whatever the blocklist names, some quoting it does not name gets `rm` past
# it: the check reads the text, the shell reads what the text means.
#
# ## 4. The corrected pattern: parse, gate, dispatch
#
# `gate.parse_request` accepts four verbs with one ASCII target each; the
# message body of `send` is stored as data and never interpreted.
# `gate.check_action` applies a **default-deny** policy: an action passes only
# if an enabled *allow* rule matches it and no enabled *deny* rule does, and the
# decision carries the rule's name and reason. Allowed actions run through
# `gate.TOOLS`, a dictionary of plain functions over an in-memory workspace.

# %%
for name, rule in gate.RULES.items():
    print(f"{rule.effect:<5} {name:<19} {rule.description}")
print()
for text in ["read workspace/notes.txt", "read workspace/../system/passwd", "delete 3", "Delete 3"]:
    action, decision = gate.check_request(text)
    print(f"{text!r:<34} -> {'ALLOW' if decision.allowed else 'DENY '}  {decision.reason}")

# %% [markdown]
# The path check is the heart of the `read` rule: `workspace/../system/passwd`
# *starts with* `workspace/` but resolves outside it.

# %%
card("01.path_is_inside")

# %% [markdown]
# Write `path_is_inside(path, root="workspace")`: `True` when the relative
# `path` stays inside the folder `root` after resolving `.` and `..`
# (`posixpath.normpath` does that), `root` itself included. Return `False` for
# an empty path, an absolute path (starting with `/`) or one containing a
# backslash. Raise `ValueError` when `root` is empty, absolute or contains a
# backslash. Careful: `workspace2/x` is not inside `workspace`.

# %%
import posixpath

def path_is_inside(path, root="workspace"):
    ### BEGIN SOLUTION
    if not root or root.startswith("/") or "\\" in root:
        raise ValueError("root must be a non-empty relative folder")
    if not path or path.startswith("/") or "\\" in path:
        return False
    norm, base = posixpath.normpath(path), posixpath.normpath(root)
    return norm == base or norm.startswith(base + "/")
    ### END SOLUTION

# %%
check("01.path_is_inside", path_is_inside)

# %% [markdown]
# ## 5. The attack set, side by side
#
# Sixteen attempts: four benign requests and twelve injection attempts
# (traversal, secrets, exfiltration, someone else's record, chaining, case
# tricks, newline injection, instruction override, quote splitting). The naive
# check "passes" an attempt when the blocklist lets it through; the gate passes
# it when the policy allows the parsed action.

# %%
result = gate.evaluate_gate()
print(f"{'attempt':<48} {'harmful':<8} {'naive':<6} gate")
for attempt, naive_ok, gate_ok in zip(gate.ATTEMPTS, result["naive_allowed"], result["gate_allowed"]):
    text = repr(attempt.text)[1:-1]
    print(f"{text[:46]:<48} {'yes' if attempt.harmful else 'no':<8} {'pass' if naive_ok else 'block':<6} {'pass' if gate_ok else 'deny'}")

# %%
card("01.attack_success_rate")

# %% [markdown]
# Write `attack_success_rate(allowed, harmful)`: the fraction of the harmful
# attempts that were allowed. Both are sequences of booleans. Raise `ValueError`
# when their lengths differ or when no attempt is harmful.

# %%
def attack_success_rate(allowed, harmful):
    ### BEGIN SOLUTION
    if len(allowed) != len(harmful):
        raise ValueError("allowed and harmful must have the same length")
    n_harmful = sum(bool(h) for h in harmful)
    if n_harmful == 0:
        raise ValueError("need at least one harmful attempt")
    return sum(bool(a) and bool(h) for a, h in zip(allowed, harmful)) / n_harmful
    ### END SOLUTION

# %%
check("01.attack_success_rate", attack_success_rate)

# %%
for name in ("naive", "gate"):
    print(f"{name:<6} attack success {result[f'{name}_attack_success']:.3f}   benign requests served {result[f'{name}_benign_allowed']:.3f}")

# %% [markdown]
# The blocklist lets two thirds of the attacks through *and* refuses one benign
# request in four; the gate stops all twelve attacks and serves every benign
# request. A fixed attack set only shows the gate resists *these* attempts:
# lesson 18 attacks it adaptively.
#
# ### Interactive: switch policy rules on and off
#
# Each checkbox enables one rule. Switch off an allow rule and its benign
# requests are denied (default deny: helpfulness drops, safety does not);
# switch off `deny_secrets` and the secret file in the workspace becomes readable.

# %% tags=["nbval-ignore-output"]
gate.policy_widget()

# %% [markdown]
# ## 6. Reproducing a reference result: indirect prompt injection
#
# Greshake et al. (2023) showed that LLM-integrated applications follow
# instructions planted in the *data* they retrieve (web pages, e-mails), so an
# attacker who never talks to the model can still steer it. In miniature: the
# agent reads its inbox, and a stand-in for an instruction-following model
# (`gate.instructions_in`, which obeys every line that parses as a request)
# turns the e-mail's text into actions. We run them without and with the gate.

# %%
inbox = gate.default_workspace().files["workspace/inbox.txt"]
planted = gate.instructions_in(inbox)
for label, policy in (("no gate", None), ("gated", gate.DEFAULT_POLICY)):
    ws = gate.default_workspace()
    log = gate.run_agent(planted, ws, policy)
    print(f"--- {label}")
    for request, outcome in log:
        print(f"  {request[:45]:<46} -> {outcome[:70]}")
    print(f"  outbox: {ws.outbox}")
    print(f"  records left: {sorted(ws.records)}")

# %% [markdown]
# Without the gate the planted lines read the API key, mail it to the attacker
# and delete another user's record. With the gate those three are refused, each
# with its reason. The fourth line, a message to a known contact asking for a
# wire transfer, **passes**: the gate limits *what* the agent can do, not *why*
# it does it.
#
# ### Provenance: where did this action come from?
#
# The gate cannot tell that request from one the user typed, but the agent can:
# it got those lines by reading a file. **Taint tracking** labels everything
# derived from untrusted data, and an action with side effects (sending,
# deleting) whose tool or arguments are tainted is held for a human's
# confirmation even when the rules allow it. This is the idea behind the *dual
# LLM* pattern (Willison 2023: a quarantined model reads untrusted data and
# never chooses actions) and CaMeL (Debenedetti et al. 2025: the user's query
# fixes the control flow, and capabilities on each value stop untrusted data
# from reaching a side-effecting tool). In our toy agent, every planted line is
# tainted:

# %%
ws = gate.default_workspace()
for request, outcome in gate.run_agent(planted, ws, gate.DEFAULT_POLICY, tainted=True):
    print(f"  {request[:45]:<46} -> {outcome[:70]}")
print("  outbox:", ws.outbox, "| records left:", sorted(ws.records))
print("the same wire request typed by the user:", gate.check_request(planted[-1])[1].reason)

# %% [markdown]
# The attacker's message and the deletion are refused by the rules as before;
# the wire transfer, which the rules allow, now waits for a human, while the
# same request from the user goes through. Taint tracking is only as good as the labels: an agent that
# copies untrusted text into a "user" request launders it, which is why CaMeL
# tracks provenance in the interpreter rather than trusting the model to report
# it. The remaining layers of this course help too: a model that does not
# follow instructions from data (lessons 16 to 18).
#
# The message body is data: a request such as `send alice@example.com $(cat x)`
# delivers the literal text, because nothing ever interprets it.

# %%
ws = gate.default_workspace()
print(gate.run_agent(["send alice@example.com $(cat workspace/secrets/api.key)"], ws))
print(ws.outbox)

# %% [markdown]
# ## Key takeaways
# * Helpful, harmless and honest trade off; measure both attack success and benign requests served.
# * Outer alignment asks whether the objective is right; inner alignment whether the system learned to pursue it.
# * Never execute text. Parse it into a structured action with a strict grammar, or refuse.
# * Default deny with named rules and reasons: what no rule allows does not happen, and every decision can be audited.
# * A gate bounds the damage of any injected instruction, direct or indirect, but cannot tell a legitimate request from a manipulated one inside what it allows.
# * Track provenance: an action with side effects whose arguments come from untrusted data needs confirmation (dual-LLM pattern, CaMeL).
#
# ## Further reading
# * A. Askell et al. (2021), *A General Language Assistant as a Laboratory for Alignment.* arXiv:2112.00861.
# * E. Hubinger et al. (2019), *Risks from Learned Optimization in Advanced Machine Learning Systems.* arXiv:1906.01820.
# * L. Langosco, J. Koch, L. Sharkey, J. Pfau, D. Krueger (2022), *Goal misgeneralization in deep reinforcement learning.* ICML.
# * R. Shah, V. Varma, R. Kumar, M. Phuong, V. Krakovna, J. Uesato, Z. Kenton (2022), *Goal misgeneralization: why correct specifications aren't enough for correct goals.* arXiv:2210.01790.
# * K. Greshake et al. (2023), *Not what you've signed up for: Compromising Real-World LLM-Integrated Applications with Indirect Prompt Injection.* arXiv:2302.12173.
# * S. Willison (2023), *The Dual LLM pattern for building AI assistants that can resist prompt injection.* simonwillison.net.
# * E. Debenedetti, I. Shumailov, T. Fan, J. Hayes, N. Carlini, D. Fabian, C. Kern, C. Shi, A. Terzis, F. Tramèr (2025), *Defeating prompt injections by design* (CaMeL). arXiv:2503.18813.
# * OWASP (2025), *Top 10 for LLM Applications*: LLM01 prompt injection, LLM06 excessive agency.
