"""Exercises of lesson 01 (introduction: a default-deny action gate)."""
import numpy as np

from labkit import gate
from labkit.exercises import Exercise, register


def _inside_cases(rng: np.random.Generator):
    cases = [
        (("workspace/notes.txt",), {}),
        (("workspace",), {}),
        (("workspace/../system/passwd",), {}),      # traversal
        (("/workspace/notes.txt",), {}),            # absolute
        (("workspace/a/../../workspace/b",), {}),   # leaves and comes back: inside
        (("workspace2/x",), {}),                    # prefix is not a folder
        (("./workspace/./x",), {}),
        (("",), {}),
        (("workspace\\..\\x",), {}),                # backslashes are refused
        (("docs/x",), {"root": "docs"}),
        (("x",), {"root": "/abs"}),                 # must raise ValueError
    ]
    parts = ["workspace", "..", ".", "a", "b", "secrets"]
    for _ in range(8):
        k = int(rng.integers(1, 5))
        cases.append((("/".join(rng.choice(parts, size=k)),), {}))
    return cases


register(Exercise(
    key="01.path_is_inside",
    title="does a path stay inside the workspace?",
    reference=gate.path_is_inside,
    make_cases=_inside_cases,
    difficulty=2, importance="core", minutes=15,
))


def _asr_cases(rng: np.random.Generator):
    cases = [
        (([True, False], [True, True]), {}),
        (([True, True, False], [False, True, True]), {}),
        (([False, False], [True, False]), {}),
        (([True], [False]), {}),                    # no harmful attempt: ValueError
        (([True, False], [True]), {}),              # lengths differ: ValueError
    ]
    for _ in range(5):
        n = int(rng.integers(2, 20))
        harmful = [bool(h) for h in rng.random(n) < 0.6]
        harmful[0] = True
        cases.append((([bool(a) for a in rng.random(n) < 0.5], harmful), {}))
    return cases


register(Exercise(
    key="01.attack_success_rate",
    title="the attack success rate of a gate",
    reference=gate.attack_success_rate,
    make_cases=_asr_cases,
    difficulty=1, importance="practice", minutes=5,
))


def _bypass_cases(rng: np.random.Generator):
    cases = [((gate.NAIVE_BLOCKLIST,), {}), (("rm",), {}), (("rm", "''"), {}), (("rm", "''", '""'), {}),
             (("rm", "'", '"'), {}), (("rm", "\\"), {}), (("rm ", "rm\t"), {})]
    extra = ["rm", "rm ", "''", '""', "'", '"', "\\", "sudo", "delete", "-rf", "r'", "'m"]
    while len(cases) < 14:
        blocklist = tuple(str(w) for w in rng.choice(extra, size=int(rng.integers(2, 6)), replace=False))
        try:
            gate.find_bypass(blocklist)
        except ValueError:
            continue  # every case has an answer
        cases.append(((blocklist,), {}))
    return cases


def _accept_bypass(args, kwargs, got) -> str | None:
    blocklist = args[0]
    if not isinstance(got, str):
        return f"the answer must be a command string, got {type(got).__name__}"
    if not gate.naive_is_safe(got, blocklist):
        return f"the blocklist {list(blocklist)} catches this command"
    if not gate.shell_runs(got, gate.RM_WORKSPACE):
        return f"the blocklist passes it, but a shell would run {gate.shell_view(got)}, not {list(gate.RM_WORKSPACE)}"
    return None


register(Exercise(
    key="01.find_bypass",
    title="design an attack that passes a blocklist",
    reference=gate.find_bypass,
    make_cases=_bypass_cases,
    difficulty=2, importance="core", minutes=15,
    accept=_accept_bypass,
))
