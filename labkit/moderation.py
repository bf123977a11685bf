"""Lesson 14: content moderation that survives obfuscation, and PII redaction.

The slide's moderator lower-cases a message and searches a few keywords with
regular expressions. It flags "I hate Mondays" and misses "k1ll" or "h u r t".
This module replaces it with a small, validated pipeline:

1. :func:`normalize`: Unicode NFKC (UAX #15), removal of invisible format
   characters and diacritics, homoglyph folding (Unicode TR #39 confusables,
   the Cyrillic/Greek subset that looks Latin), leetspeak, spaced-out letters,
   long letter repeats. Every step is a single left-to-right pass: linear time.
2. :class:`TextClassifier`: character n-gram TF-IDF (``char_wb``, n = 2..5)
   and logistic regression, trained on labkit-generated synthetic messages
   (:func:`generate_messages`), with a decision threshold calibrated on
   held-out data for a target false-positive rate.
3. :func:`find_pii` / :func:`redact_pii`: e-mail addresses, phone numbers,
   payment cards (with the Luhn check, ISO/IEC 7812-1), IBANs (ISO 13616
   mod-97 check), US social security numbers and IPv4 addresses. Every
   pattern has bounded repetition and a left-context guard, so a match can
   only start at the beginning of a token: total work is linear in the input.

4. :func:`davidson_moderator`: the same pipeline trained on a seeded,
   stratified train split of the Davidson et al. (2017) tweets, its ``C`` and
   threshold chosen on the validation split, cached with
   :func:`labkit.lm.cache.cached` (:func:`davidson_classifier` is its binary
   hateful-or-offensive classifier).

The real sets come from :mod:`labkit.datasets`; HateCheck and presidio's
synthetic PII spans are never trained on, and the Davidson test split is only
read to report.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
import sys
import unicodedata
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from labkit.ui import interactive_figure, text_box
from labkit.validation import ensure_array, ensure_choice, ensure_float, ensure_int, ensure_weights

# ----------------------------------------------------------------------------
# 1. Normalisation
# ----------------------------------------------------------------------------

# Latin look-alikes from Cyrillic and Greek (a subset of Unicode TR #39's
# confusables table, lower case: normalize() lower-cases first).
_HOMOGLYPHS = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
    "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i",
    "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g", "ɑ": "a", "ı": "i", "ȷ": "j",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ω": "w", "ß": "ss",
}
# Digits and symbols used as letters inside words ("k1ll", "h@te", "$tupid").
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
         "@": "a", "$": "s", "!": "i", "|": "l", "+": "t", "€": "e"}
_HOMOGLYPH_TABLE = str.maketrans(_HOMOGLYPHS)
_LEET_TABLE = str.maketrans(_LEET)
_LEET_CHARS = "".join(re.escape(c) for c in _LEET)

# A token of letters, digits and leet symbols; inside it, leet is translated
# only when the token also holds a real letter ("k1ll" yes, "2024" no).
# Only tokens holding a letter and a leet character reach the Python callback;
# the lookbehind lets a match start only at a token's first character, so
# the lookahead scans each token once: linear time.
_TOKEN = re.compile(rf"(?<![a-z0-9{_LEET_CHARS}])(?=[0-9{_LEET_CHARS}]*[a-z])[a-z26]*[{_LEET_CHARS}][a-z0-9{_LEET_CHARS}]*")
_HAS_LETTER = re.compile(r"[a-z]")
# Runs of single characters separated by one space or one punctuation mark:
# "h u r t", "h.u.r.t", "k-1-l-l". Each repetition consumes exactly one
# character and one separator, so the match is deterministic (no backtracking
# blow-up); the guards keep it from starting inside a word.
_SPACED = re.compile(rf"(?<![a-z0-9{_LEET_CHARS}])(?:[a-z0-9{_LEET_CHARS}][ .\-_*]){{2,}}[a-z0-9{_LEET_CHARS}](?![a-z0-9])")
_SPACED_SEP = re.compile(r"[ .\-_*]")
_REPEATS = re.compile(r"([a-z])\1{2,}")  # "kiiiill" -> "kill"; English rarely triples a letter
_SPACES = re.compile(r"\s+")


_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@functools.lru_cache(maxsize=1)
def _invisible_table() -> dict[int, None]:
    """str.translate table deleting combining marks, format and control characters (built once)."""
    drop = ("Mn", "Me", "Cf", "Cc")
    return {cp: None for cp in range(sys.maxunicode + 1)
            if unicodedata.category(chr(cp)) in drop and chr(cp) not in "\n\t"}


_SENTENCE = re.compile(r"[^.!?\n]+[.!?\n]*")  # a sentence and its closing punctuation


def _strip_marks(text: str) -> str:
    """Drop format characters (zero-width joiners, soft hyphens...) and combining marks."""
    if text.isascii():  # the common case: only control characters can be invisible
        return _ASCII_CONTROL.sub("", text)
    return unicodedata.normalize("NFKD", text).translate(_invisible_table())


def _join_spaced(match: re.Match) -> str:
    return _SPACED_SEP.sub("", match.group(0))


def _unleet(match: re.Match) -> str:
    token = match.group(0)
    if not _HAS_LETTER.search(token):
        return token  # "2024", "+44": numbers stay numbers
    core = token.rstrip("!|+$@")  # "wow!" keeps its exclamation mark
    return core.translate(_LEET_TABLE) + token[len(core):]


def normalize(text: str) -> str:
    """Fold the usual obfuscations of a message into plain lower-case text.

    Steps, each one linear-time pass: NFKC (fullwidth and stylised letters to
    ASCII), removal of invisible format characters and diacritics, lower-case,
    Cyrillic/Greek homoglyphs to Latin, spaced letters joined ("h u r t" ->
    "hurt"), leetspeak inside words ("k1ll" -> "kill"), runs of three or more
    equal letters shortened to one, whitespace collapsed.

    Parameters
    ----------
    text : str
        Any Unicode string.

    Returns
    -------
    str
        The normalised text (may be empty).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    text = unicodedata.normalize("NFKC", text)
    text = _strip_marks(text).lower()
    text = " ".join(text.translate(_HOMOGLYPH_TABLE).split())  # one space between words
    text = _SPACED.sub(_join_spaced, text)
    text = _TOKEN.sub(_unleet, text)
    return _REPEATS.sub(r"\1", text)


# ----------------------------------------------------------------------------
# 2. PII detection and redaction
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PIISpan:
    """A detected piece of personal information: ``text == source[start:end]``."""

    start: int
    end: int
    kind: str
    text: str


def luhn_valid(number: str) -> bool:
    """The Luhn (mod 10) check digit test of ISO/IEC 7812-1.

    From the rightmost digit, double every second digit, subtract 9 from
    doubles above 9, and sum: the number is valid when the sum is 0 mod 10.
    Spaces and dashes are ignored; any other non-digit makes it invalid.
    """
    if not isinstance(number, str):
        raise TypeError(f"number must be a str, got {type(number).__name__}")
    digits = number.replace(" ", "").replace("-", "")
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    reverse = digits[::-1]
    # A doubled digit minus 9 (when above 9) is again one digit, so a
    # translation table does the doubling and one pass sums everything.
    total = sum(map(int, reverse[0::2] + reverse[1::2].translate(_LUHN_DOUBLED)))
    return total % 10 == 0


_LUHN_DOUBLED = str.maketrans({str(d): str(2 * d - 9 if d > 4 else 2 * d) for d in range(10)})


def iban_valid(iban: str) -> bool:
    """ISO 13616 IBAN check: move the first four characters to the end, map
    letters to 10..35, and the resulting integer must be 1 mod 97."""
    if not isinstance(iban, str):
        raise TypeError(f"iban must be a str, got {type(iban).__name__}")
    s = iban.replace(" ", "").upper()
    if not 15 <= len(s) <= 34 or not s.isascii() or not s.isalnum():
        return False
    rearranged = s[4:] + s[:4]
    value = 0
    for c in rearranged:  # piecewise mod keeps the numbers small
        value = (value * (100 if c.isalpha() else 10) + int(c, 36)) % 97
    return value == 1


_DATE = re.compile(r"(?:19|20)[0-9]{2}[\-./][0-9]{1,2}[\-./][0-9]{1,2}|[0-9]{1,2}[\-./][0-9]{1,2}[\-./](?:19|20)[0-9]{2}")

_EXTENSION = re.compile(r" ?(?:x|ext\.?) ?[0-9]{1,5}$")


def _phone_ok(s: str) -> bool:
    """7 to 15 digits, not a date, and not two bare space-separated numbers ("370 3911 Fourth Avenue")
    unless the first starts with a national trunk prefix 0."""
    if "x" in s:
        s = _EXTENSION.sub("", s)
    digits = len(s) - sum(map(s.count, " .-+()"))
    # A national number with a trunk prefix ("030 1234567", "01632 960001") starts with 0; house numbers do not.
    bare_pair = s.count(" ") == 1 and not any(c in s for c in "+(-.") and not s.startswith("0")
    return 7 <= digits <= 15 and not bare_pair and not _DATE.match(s)


def _spelled_email_ok(s: str) -> bool:
    """A spelled-out address must spell out at least one of its separators ("at" or "dot" as a word)."""
    return bool(re.search(r"(?i)(?: |[\[(])(?:at|dot)(?: |[\])])", s))


# Every pattern: ASCII classes, bounded quantifiers, and a negative lookbehind
# so that a match can only start where a token starts. A failed attempt then
# costs at most a constant number of steps, and the scan stays linear.
_PII_PATTERNS: list[tuple[str, re.Pattern, Callable[[str], bool] | None]] = [
    ("EMAIL_ADDRESS", re.compile(
        r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@"
        r"(?:[A-Za-z0-9\-]{1,63}\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9\-])"), None),
    # Spelled out to dodge scrapers: "jane dot doe at example dot com", "jane[at]example[dot]com".
    ("EMAIL_ADDRESS", re.compile(
        r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}"
        r"(?:(?: dot | ?[\[(]dot[\])] ?)[A-Za-z0-9][A-Za-z0-9_%+\-]{0,63}){0,3}"
        r"(?: at | ?[\[(]at[\])] ?)(?:[A-Za-z0-9\-]{1,63}(?: dot | ?[\[(]dot[\])] ?|\.)){1,8}"
        r"(?:com|org|net|edu|gov|io|info|co|uk|de|fr|[a-z]{2})(?![A-Za-z0-9\-])", re.IGNORECASE), _spelled_email_ok),
    ("IBAN_CODE", re.compile(
        r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?(?![A-Za-z0-9])"), iban_valid),
    ("US_SSN", re.compile(r"(?<![0-9\-])[0-9]{3}-[0-9]{2}-[0-9]{4}(?![0-9\-])"), None),
    ("CREDIT_CARD", re.compile(r"(?<![0-9\-])[0-9](?:[ \-]?[0-9]){11,18}(?![0-9])"), luhn_valid),
    ("IP_ADDRESS", re.compile(
        r"(?<![0-9.vV])(?<![Vv]ersion )(?<![Vv]er\. )(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}"
        r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?![0-9]|\.[0-9])"), None),
    ("PHONE_NUMBER", re.compile(
        r"(?<![A-Za-z0-9+\-.])(?:\+[0-9]{1,3}[ .\-]?)?(?:\([0-9]{1,4}\)[ .\-]?)?"
        r"(?:[0-9]{1,5}(?:[ .\-][0-9]{2,7}){1,4}|[0-9]{10,12})(?: ?(?:x|ext\.?) ?[0-9]{1,5})?(?![A-Za-z0-9]|[.\-:][0-9])"),
     lambda s: _phone_ok(s)),
]
PII_KINDS: tuple[str, ...] = tuple(dict.fromkeys(kind for kind, _, _ in _PII_PATTERNS))


def find_pii(text: str, kinds: Iterable[str] | None = None) -> list[PIISpan]:
    """Find personal information in ``text``.

    Patterns run in priority order (e-mail, IBAN, SSN, card, IPv4, phone);
    a later match that overlaps an earlier one is dropped, so "460-89-9847" is
    an SSN, not a phone number. Card numbers must pass the Luhn check and
    IBANs the mod-97 check, which removes most random digit runs.

    Parameters
    ----------
    text : str
    kinds : iterable of str or None
        Subset of :data:`PII_KINDS` to look for; ``None`` means all.

    Returns
    -------
    list of PIISpan, sorted by start, non-overlapping.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    wanted = set(PII_KINDS) if kinds is None else {ensure_choice("kinds", k, PII_KINDS) for k in kinds}
    taken = bytearray(len(text))  # 1 where an earlier, higher-priority span lies
    spans: list[PIISpan] = []
    for kind, pattern, valid in _PII_PATTERNS:
        if kind not in wanted:
            continue
        for m in pattern.finditer(text):
            s, e = m.span()
            if taken.find(1, s, e) != -1 or (valid is not None and not valid(m.group(0))):
                continue
            taken[s:e] = b"\x01" * (e - s)
            spans.append(PIISpan(s, e, kind, m.group(0)))
    return sorted(spans, key=lambda sp: sp.start)


def redact_pii(text: str, kinds: Iterable[str] | None = None) -> tuple[str, list[PIISpan]]:
    """Replace every span :func:`find_pii` finds by ``[KIND]``.

    Returns
    -------
    (redacted, spans) : the redacted text and the spans, in the original text's coordinates.
    """
    spans = find_pii(text, kinds)
    parts, last = [], 0
    for sp in spans:
        parts.append(text[last:sp.start])
        parts.append(f"[{sp.kind}]")
        last = sp.end
    parts.append(text[last:])
    return "".join(parts), spans


# ----------------------------------------------------------------------------
# 3. Synthetic training data and obfuscation attacks
# ----------------------------------------------------------------------------

CATEGORIES: tuple[str, ...] = ("insult", "threat", "hate")

# Mild, obviously synthetic phrasings; no slurs. Hard negatives (benign text
# with trigger words: "I hate Mondays", "kill the process", "I would never hurt
# you", positive statements about groups) teach the model context, not keywords.
_GROUPS = ["women", "men", "immigrants", "muslims", "christians", "jews", "gay people",
           "trans people", "black people", "disabled people", "refugees", "foreigners", "old people"]
_SLOTS = {
    "group": _GROUPS,
    "insult_noun": ["idiot", "loser", "moron", "clown", "fool", "creep", "waste of space", "joke"],
    "insult_adj": ["stupid", "pathetic", "worthless", "useless", "disgusting", "dumb", "ugly", "brainless"],
    "harm_verb": ["hurt", "kill", "beat", "punch", "stab", "shoot", "strangle", "smash"],
    "when": ["tonight", "tomorrow", "soon", "after school", "when you least expect it", "next time i see you", ""],
    "dehum": ["vermin", "rats", "parasites", "animals", "a plague", "a disease", "scum", "trash"],
    "place": ["this country", "our town", "this planet", "my street", "our schools", "the internet"],
    "thing": ["mondays", "traffic", "this weather", "rainy days", "homework", "spam calls", "slow wifi", "my alarm clock"],
    "topic": ["the match", "my garden", "the new phone", "dinner", "the exam", "the trip", "the movie", "python"],
    "process": ["the process", "the server", "that job", "the tab", "the build", "the old branch"],
    "name": ["sam", "alex", "jo", "kim", "lee", "pat", "max", "robin"],
}
_TEMPLATES: dict[str, list[str]] = {
    "insult": [
        "you are a {insult_adj} {insult_noun}", "what a {insult_adj} {insult_noun} you are",
        "shut up you {insult_noun}", "{name} is a {insult_adj} {insult_noun}", "nobody likes you, {insult_noun}",
        "you {insult_adj} {insult_noun}", "you are so {insult_adj}", "go away you {insult_adj} {insult_noun}",
        "your face is {insult_adj}", "everyone thinks you are a {insult_noun}",
    ],
    "threat": [
        "i will {harm_verb} you {when}", "i am going to {harm_verb} you {when}", "watch out, i will {harm_verb} you",
        "you will get hurt {when}", "i know where you live and i will {harm_verb} you",
        "i will {harm_verb} your family {when}", "someone should {harm_verb} {name} {when}",
        "you deserve to get {harm_verb_past} {when}", "i'm gonna {harm_verb} you", "say that again and i will {harm_verb} you",
    ],
    "hate": [
        "{group} are {dehum}", "i hate {group}", "{group} are {insult_adj}", "all {group} should leave {place}",
        "{group} do not belong in {place}", "i can't stand {group}", "{group} are a {insult_adj} burden on {place}",
        "never trust {group}", "{group} should be banned from {place}", "we must get rid of {group}",
        "{group} are a {insult_adj} {insult_noun}s", "i despise {group}", "{group} make me sick",
        "{place} would be better without {group}", "{group} can't be trusted with anything",
    ],
    "benign": [
        "i hate {thing}", "{thing} is killing me", "kill {process}", "i love {group}", "{group} are welcome in {place}",
        "i would never {harm_verb} you", "how was {topic}?", "thanks {name}, see you {when}", "my back hurts after {topic}",
        "{group} deserve respect", "saying '{group} are {dehum}' is hateful", "it is wrong to call {group} {dehum}",
        "that {topic} was {good_adj}", "can you help me with {topic}?", "i am so {good_adj} about {topic}",
        "{name} made a great point about {topic}", "the {insult_adj} weather ruined {topic}", "you are a {good_adj} friend",
        "i hurt my knee during {topic}", "we should shoot a video about {topic}", "{group} in {place} are my neighbours",
        "this is a threat model for {process}", "stop being so hard on yourself, {name}",
        "email me the notes from {topic}", "call me after {topic}", "good morning everyone", "who wants pizza tonight?",
        "the meeting about {topic} moved to friday", "please send me your phone number", "i finished {topic} early",
        "what do you think about {topic}?", "happy birthday {name}!", "my address changed, i will send it later",
        "the weather is {good_adj} today", "{name} and i watched {topic}", "i disagree with you about {topic}",
        "i don't hate {group}", "{group} are not {dehum}", "there is nothing wrong with {group}",
        "many {group} live in {place}", "i met some {group} at {topic}", "we need more {group} in {place}",
        "statements like 'i hate {group}' are unacceptable", "you said {group} are {dehum}? that is wrong",
        "{group} are people like everyone else", "i stand with {group}", "some of my friends are {group}",
    ],
}
_SLOTS["harm_verb_past"] = ["hurt", "beaten", "punched", "stabbed", "shot", "smashed"]
_SLOTS["good_adj"] = ["great", "lovely", "happy", "excited", "wonderful", "kind", "fun", "brilliant"]
_SLOT = re.compile(r"\{(\w+)\}")


def generate_messages(n: int, seed: int = 0, harmful_fraction: float = 0.5) -> tuple[list[str], np.ndarray, list[str]]:
    """Generate ``n`` labelled synthetic chat messages from templates.

    Parameters
    ----------
    n : int >= 1
    seed : int
    harmful_fraction : float in [0, 1]
        Share of harmful messages, spread evenly over :data:`CATEGORIES`.

    Returns
    -------
    texts : list of str
    labels : np.ndarray of bool, True for harmful
    categories : list of str, one of :data:`CATEGORIES` or ``"benign"``
    """
    n = ensure_int("n", n, low=1)
    frac = ensure_float("harmful_fraction", harmful_fraction, 0.0, 1.0)
    rng = np.random.default_rng(ensure_int("seed", seed))
    n_harm = int(round(n * frac))
    cats = [CATEGORIES[i % len(CATEGORIES)] for i in range(n_harm)] + ["benign"] * (n - n_harm)
    cats = [cats[i] for i in rng.permutation(n)]
    texts = []
    for cat in cats:
        template = _TEMPLATES[cat][int(rng.integers(len(_TEMPLATES[cat])))]
        text = _SLOT.sub(lambda m: _SLOTS[m.group(1)][int(rng.integers(len(_SLOTS[m.group(1)])))], template)
        text = _SPACES.sub(" ", text).strip()
        if rng.random() < 0.5:  # chat casing and punctuation vary
            text = text.capitalize()
        if rng.random() < 0.3:
            text += str(rng.choice(["!", ".", "!!", " >:(", " lol", "?"]))
        texts.append(text)
    labels = np.array([c != "benign" for c in cats], dtype=bool)
    return texts, labels, cats


_ZERO_WIDTH = "\u200b"
_LEET_OUT = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}
_HOMOGLYPH_OUT = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "i": "і", "y": "у"}
ATTACKS: tuple[str, ...] = ("none", "leetspeak", "homoglyphs", "spaced", "zero_width", "fullwidth", "diacritics", "repeats", "upper")


def obfuscate(text: str, attack: str) -> str:
    """Apply one obfuscation ``attack`` (see :data:`ATTACKS`) to every word of ``text``.

    Deterministic: the same text and attack always give the same output.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    ensure_choice("attack", attack, ATTACKS)
    if attack == "none":
        return text
    if attack == "leetspeak":
        return "".join(_LEET_OUT.get(c, c) for c in text)
    if attack == "homoglyphs":
        return "".join(_HOMOGLYPH_OUT.get(c, c) for c in text)
    if attack == "spaced":
        return "  ".join(" ".join(word) for word in text.split(" "))
    if attack == "zero_width":
        return _ZERO_WIDTH.join(text)
    if attack == "fullwidth":
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)
    if attack == "diacritics":
        return "".join(c + "\u0301" if c.isalpha() else c for c in text)
    if attack == "repeats":
        return "".join(c * 3 if c in "aeiou" else c for c in text)
    return text.upper()


# Letters that normalize() leaves alone (NFKC does not fold the small capitals
# of the IPA and phonetic blocks): an obfuscation it does not invert.
_SMALL_CAPS = dict(zip("abcdefghijklmnopqrstuvwxyz", "ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘǫʀꜱᴛᴜᴠᴡxʏᴢ"))


def small_caps(text: str) -> str:
    """Write ``text`` in look-alike small capitals ("kill" -> "ᴋɪʟʟ"), which :func:`normalize` does not fold."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return "".join(_SMALL_CAPS.get(c, c) for c in text.lower())


DILUTION_BUDGET = 80  # characters an attacker may append in the evasion exercise
_DILUTION = ", thanks sam, happy birthday, good morning everyone, who wants pizza tonight lol"
_SENTENCE_BREAK = re.compile(r"[.!?\n]")


def dilute(text: str) -> str:
    """Append friendly chat to ``text`` inside the same sentence (:data:`DILUTION_BUDGET` characters).

    The message stays readable and unchanged; the classifier scores the
    sentence as a whole, and the friendly n-grams outweigh the harmful ones.
    Lesson 14's evasion exercise asks for such an attack.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return text + _DILUTION


def evasion_problem(original: str, evaded: str, classifier: "TextClassifier") -> str | None:
    """Why ``evaded`` is not a valid evasion of ``original`` (None when it is).

    Valid: it starts with ``original`` unchanged (a reader sees the whole
    message), appends at most :data:`DILUTION_BUDGET` characters with no
    sentence break (``.``, ``!``, ``?`` or a newline: a new sentence is scored
    on its own), and ``classifier`` does not flag it.
    """
    if not isinstance(evaded, str):
        return f"the evaded message must be a str, got {type(evaded).__name__}"
    if not evaded.startswith(original):
        return "the evaded message must start with the original message, unchanged"
    added = evaded[len(original):]
    if len(added) > DILUTION_BUDGET:
        return f"at most {DILUTION_BUDGET} characters may be added, got {len(added)}"
    if _SENTENCE_BREAK.search(added):
        return "the added text must not start a new sentence (no '.', '!', '?' or newline)"
    if classifier.predict([evaded])[0]:
        return f"the classifier still flags it (score {classifier.predict_proba([evaded])[0]:.3f} >= threshold {classifier.threshold:.3f})"
    return None


# ----------------------------------------------------------------------------
# 4. The classifier
# ----------------------------------------------------------------------------


def _as_texts(name: str, texts) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a list of str, not a single str")
    try:
        out = list(texts)
    except TypeError:
        raise TypeError(f"{name} must be an iterable of str, got {type(texts).__name__}") from None
    for t in out:
        if not isinstance(t, str):
            raise TypeError(f"{name} must contain only str, found {type(t).__name__}")
    return out


def _as_labels(labels, n: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"labels must be a 1-D array with one entry per text ({n}), got shape {y.shape}")
    if y.dtype != bool:
        if not np.isin(y, [0, 1]).all():
            raise ValueError("labels must be booleans or 0/1")
        y = y.astype(bool)
    return y


def threshold_for_fpr(benign_scores, max_false_positive_rate: float = 0.05) -> float:
    """Lowest threshold t such that the share of benign scores >= t is at most
    ``max_false_positive_rate``.

    Sort the benign scores in decreasing order, s_(0) >= s_(1) >= ...; with
    k = floor(max_fpr * n), at most k of them may be flagged, so t is the
    smallest float above s_(k) (and 0 when every score may be flagged).
    Ties are handled: every copy of s_(k) stays below t.

    Parameters
    ----------
    benign_scores : array-like of float, shape (n,), n >= 1
    max_false_positive_rate : float in [0, 1]

    Returns
    -------
    float
    """
    scores = ensure_array("benign_scores", benign_scores, ndim=1, min_len=1)
    fpr = ensure_float("max_false_positive_rate", max_false_positive_rate, 0.0, 1.0)
    ordered = np.sort(scores)[::-1]
    k = int(np.floor(fpr * len(ordered)))
    if k >= len(ordered):
        return 0.0
    return float(np.nextafter(ordered[k], np.inf))


class CharNgramCounts(BaseEstimator, TransformerMixin):
    """Counts of character n-grams inside word boundaries, like scikit-learn's
    ``CountVectorizer(analyzer="char_wb")``, but computed per distinct word.

    ``char_wb`` pads each whitespace-separated word with one space and takes
    its n-grams, so a document's counts are the sum of its words' counts. Chat
    messages reuse a small set of words, so caching each word's counts makes
    transform several times faster with identical output (checked in the tests).

    Parameters
    ----------
    ngram_range : (int, int)
    min_df : int
        Drop n-grams seen in fewer training documents.
    cache_size : int
        Words remembered; the cache is cleared when full (bounded memory on hostile input).
    """

    def __init__(self, ngram_range: tuple[int, int] = (2, 5), min_df: int = 2, cache_size: int = 200_000) -> None:
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.cache_size = cache_size

    def fit(self, docs: list[str], y=None) -> "CharNgramCounts":
        counter = CountVectorizer(analyzer="char_wb", ngram_range=self.ngram_range, lowercase=False, min_df=self.min_df)
        counter.fit(docs)
        self.vocabulary_ = counter.vocabulary_
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        return self

    def _word(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        hit = self._cache.get(word)
        if hit is None:
            lo, hi = self.ngram_range
            padded = f" {word} "
            vocab = self.vocabulary_
            idx = [vocab[g] for n in range(lo, hi + 1) for i in range(len(padded) - n + 1)
                   if (g := padded[i:i + n]) in vocab]
            hit = np.unique(np.asarray(idx, dtype=np.int64), return_counts=True)
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[word] = hit
        return hit

    def transform(self, docs: list[str]) -> sparse.csr_matrix:
        indices, values, lengths = [], [], []
        for doc in docs:
            n = 0
            for word in doc.split():
                i, c = self._word(word)
                indices.append(i)
                values.append(c)
                n += len(i)
            lengths.append(n)
        shape = (len(docs), len(self.vocabulary_))
        if not indices:
            return sparse.csr_matrix(shape, dtype=np.float64)
        rows = np.repeat(np.arange(len(docs)), lengths)
        # COO -> CSR sums the counts of n-grams shared by several words of a document.
        return sparse.coo_matrix((np.concatenate(values).astype(np.float64), (rows, np.concatenate(indices))),
                                 shape=shape).tocsr()


class TextClassifier:
    """Harmful-message classifier: normalisation, char n-gram TF-IDF, logistic regression.

    TF-IDF over character n-grams inside word boundaries (``char_wb``, n = 2..5,
    sublinear tf; Salton and Buckley 1988) is robust to misspellings that a
    word vocabulary misses; logistic regression (L2, lbfgs) gives probabilities
    we can threshold. Training is deterministic: no random state is involved.

    Parameters
    ----------
    C : float > 0
        Inverse L2 regularisation strength.
    max_chars : int >= 64
        A longer message is scored sentence by sentence (sentences longer than
        this in overlapping windows of this many characters) and gets its
        *highest* score, so padding a harmful sentence with pages of harmless
        text cannot dilute its TF-IDF vector.
    word_ngrams : (int, int) or None
        Also use word n-grams of these lengths (words: runs of two or more word
        characters, scikit-learn's default linear ``token_pattern``), with their
        own TF-IDF block beside the character block, each block of unit length
        so the many character n-grams do not drown the words; None: character
        n-grams only. Words carry what a request asks for ("build a bomb")
        where character pieces are shared with harmless words.
    """

    def __init__(self, C: float = 4.0, max_chars: int = 300, word_ngrams: tuple[int, int] | None = None) -> None:
        self.C = ensure_float("C", C, low=0.0, low_open=True)
        self.max_chars = ensure_int("max_chars", max_chars, low=64)
        if word_ngrams is not None:
            if isinstance(word_ngrams, (str, bytes)) or len(tuple(word_ngrams)) != 2:
                raise TypeError(f"word_ngrams must be None or a pair (shortest, longest), got {word_ngrams!r}")
            lo = ensure_int("word_ngrams[0]", word_ngrams[0], low=1, high=5)
            word_ngrams = (lo, ensure_int("word_ngrams[1]", word_ngrams[1], low=lo, high=5))
        self.word_ngrams = word_ngrams
        self.threshold = 0.5
        self.pipeline: Pipeline | None = None

    def _pipeline(self) -> Pipeline:
        logreg = ("logreg", LogisticRegression(C=self.C, max_iter=2000, class_weight="balanced"))
        chars = [("counts", CharNgramCounts(ngram_range=(2, 5), min_df=2)), ("tfidf", TfidfTransformer(sublinear_tf=True))]
        if self.word_ngrams is None:
            return Pipeline([*chars, logreg])
        words = [("counts", CountVectorizer(analyzer="word", ngram_range=self.word_ngrams, lowercase=False, min_df=2)),
                 ("tfidf", TfidfTransformer(sublinear_tf=True))]
        return Pipeline([("features", FeatureUnion([("chars", Pipeline(chars)), ("words", Pipeline(words))])), logreg])

    def _tfidf_blocks(self) -> list[Pipeline]:
        """The (counts, tfidf) steps of each feature block: characters, then words if used."""
        pipe = self._check_fitted()
        if self.word_ngrams is None:
            return [pipe[:-1]]
        return [block for _, block in pipe["features"].transformer_list]

    def fit(self, texts: Sequence[str], labels, sample_weight=None) -> "TextClassifier":
        """Fit on ``texts`` (normalised here) and boolean ``labels`` (True = harmful).

        ``sample_weight`` (optional, one non-negative weight per text) multiplies
        each text's term in the loss, on top of the balanced class weights.
        """
        texts = _as_texts("texts", texts)
        y = _as_labels(labels, len(texts))
        if y.all() or not y.any():
            raise ValueError("labels must contain both classes")
        fit_params = {}
        if sample_weight is not None:
            fit_params["logreg__sample_weight"] = ensure_weights("sample_weight", sample_weight, len(texts), "text")
        self.pipeline = self._pipeline().fit([normalize(t) for t in texts], y, **fit_params)
        return self

    def _check_fitted(self) -> Pipeline:
        if self.pipeline is None:
            raise RuntimeError("this TextClassifier is not fitted yet: call fit(texts, labels) first")
        return self.pipeline

    def _window_docs(self, texts: list[str]) -> tuple[list[str], np.ndarray]:
        """Normalised documents to score (long texts cut into overlapping windows) and their owners."""
        docs, owner = [], []
        w, step = self.max_chars, self.max_chars // 2
        for i, t in enumerate(texts):
            t = normalize(t)
            if len(t) <= w:
                docs.append(t)
                owner.append(i)
            else:  # identical pieces (repetitive padding) are scored once
                windows = dict.fromkeys(
                    sentence[s:s + w] for sentence in _SENTENCE.findall(t)
                    for s in range(0, max(1, len(sentence) - step), step))
                docs.extend(windows)
                owner.extend([i] * len(windows))
        return docs, np.asarray(owner, dtype=int)

    def _window_proba(self, texts: list[str]):
        """Window scores, owners and features (shared with :class:`Moderator`)."""
        pipe = self._check_fitted()
        docs, owner = self._window_docs(texts)
        features = pipe[:-1].transform(docs)
        return pipe["logreg"].predict_proba(features)[:, 1], owner, features

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probability that each text is harmful, shape (n,), in [0, 1].

        A text longer than ``max_chars`` gets the highest score of its windows.
        """
        self._check_fitted()
        texts = _as_texts("texts", texts)
        if not texts:
            return np.zeros(0)
        p, owner, _ = self._window_proba(texts)
        out = np.zeros(len(texts))
        np.maximum.at(out, owner, p)
        return out

    def calibrate_threshold(self, texts: Sequence[str], labels, max_false_positive_rate: float = 0.05,
                            min_threshold: float = 0.0) -> float:
        """Choose the lowest threshold whose false-positive rate on held-out
        ``texts`` is at most ``max_false_positive_rate``, but not below
        ``min_threshold``; store and return it.

        The threshold sits just above the k-th highest benign score, with
        k = floor(max_fpr · n_benign), so at most k benign texts are flagged.
        """
        fpr = ensure_float("max_false_positive_rate", max_false_positive_rate, 0.0, 1.0)
        floor = ensure_float("min_threshold", min_threshold, 0.0, 1.0)
        texts = _as_texts("texts", texts)
        y = _as_labels(labels, len(texts))
        if y.all():
            raise ValueError("labels must contain benign (False) examples to measure false positives")
        benign_scores = self.predict_proba([t for t, lab in zip(texts, y) if not lab])
        self.threshold = max(threshold_for_fpr(benign_scores, fpr), floor)
        return self.threshold

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Boolean harmful decisions: ``predict_proba(texts) >= threshold``."""
        return self.predict_proba(texts) >= self.threshold


class Moderator:
    """The whole moderation pipeline: normalise, score, categorise, redact.

    A calibrated binary :class:`TextClassifier` decides harmful or not; for
    flagged messages a multinomial logistic regression on the same TF-IDF
    features names the category (one of ``categories``). Messages longer
    than ``max_chars`` are sent to human review without scoring (fail closed:
    an attacker cannot hide a message by making it huge), but still redacted.

    Parameters
    ----------
    C : float > 0
        Inverse regularisation of both logistic regressions.
    max_chars : int >= 1
        Longest message scored automatically.
    categories : sequence of str, at least two
        The harmful categories (default :data:`CATEGORIES` of the generated
        messages; ``("hate", "offensive")`` for the Davidson tweets).
    benign : str
        The label of harmless messages (``"neither"`` for the Davidson tweets).
    balance_categories : bool
        Weight the categories inversely to their frequency in the category
        head (Davidson's hate tweets are 7 % of the harmful ones).
    """

    def __init__(self, C: float = 4.0, max_chars: int = 100_000, categories: Sequence[str] = CATEGORIES,
                 benign: str = "benign", balance_categories: bool = False) -> None:
        self.classifier = TextClassifier(C=C)
        self.max_chars = ensure_int("max_chars", max_chars, low=1)
        if isinstance(categories, str) or len(set(categories)) < 2 or not all(isinstance(c, str) for c in categories):
            raise ValueError(f"categories must name at least two distinct harmful categories, got {categories!r}")
        if not isinstance(benign, str) or benign in categories:
            raise ValueError(f"benign must be a str that is not one of the categories, got {benign!r}")
        self.categories, self.benign = tuple(categories), benign
        if not isinstance(balance_categories, bool):
            raise TypeError(f"balance_categories must be True or False, got {type(balance_categories).__name__}")
        self.balance_categories = balance_categories
        self.category_head: LogisticRegression | None = None

    def _check_categories(self, texts: list[str], categories: Sequence[str]) -> list[str]:
        cats = [ensure_choice("categories", c, self.categories + (self.benign,)) for c in categories]
        if len(cats) != len(texts):
            raise ValueError(f"categories must have one entry per text ({len(texts)}), got {len(cats)}")
        return cats

    def fit(self, texts: Sequence[str], categories: Sequence[str]) -> "Moderator":
        """Fit on ``texts`` labelled with a category or the benign label."""
        texts = _as_texts("texts", texts)
        cats = self._check_categories(texts, categories)
        harmful = np.array([c != self.benign for c in cats])
        self.classifier.fit(texts, harmful)
        harmful_texts = [t for t, h in zip(texts, harmful) if h]
        features = self.classifier.pipeline[:-1].transform([normalize(t) for t in harmful_texts])
        self.category_head = LogisticRegression(C=self.classifier.C, max_iter=2000,
                                                class_weight="balanced" if self.balance_categories else None).fit(
            features, [c for c in cats if c != self.benign])
        return self

    def calibrate(self, texts: Sequence[str], categories: Sequence[str], max_false_positive_rate: float = 0.05) -> float:
        """Calibrate the harmful threshold on held-out labelled texts; return it."""
        texts = _as_texts("texts", texts)
        cats = self._check_categories(texts, categories)
        return self.classifier.calibrate_threshold(texts, [c != self.benign for c in cats], max_false_positive_rate)

    def _scores(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Harmful probability (n,) and category probabilities (n, k) of the highest-scoring window."""
        if self.category_head is None:
            raise RuntimeError("this Moderator is not fitted yet: call fit(texts, categories) first")
        p, owner, features = self.classifier._window_proba(texts)
        best = np.full(len(texts), -1)
        harm = np.full(len(texts), -1.0)
        for j in np.argsort(p, kind="stable"):  # ascending: the last write per owner is its maximum
            best[owner[j]], harm[owner[j]] = j, p[j]
        return harm, self.category_head.predict_proba(features[best])

    def predict(self, texts: Sequence[str]) -> list[str]:
        """For each text, the benign label or the category of a flagged message."""
        texts = _as_texts("texts", texts)
        if not texts:
            return []
        harm, cat_p = self._scores(texts)
        names = self.category_head.classes_
        return [str(names[int(np.argmax(cp))]) if h >= self.classifier.threshold else self.benign
                for h, cp in zip(harm, cat_p)]

    def moderate(self, text: str) -> dict:
        """Decision (``allow``, ``flag`` or ``review``), scores, normalised and redacted text."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        redacted, spans = redact_pii(text)
        result = {"redacted": redacted, "pii": spans, "threshold": self.classifier.threshold}
        if len(text) > self.max_chars:
            return {**result, "decision": "review", "category": None, "harmful": float("nan"),
                    "category_scores": {}, "normalized": ""}
        harm, cat_p = self._scores([text])
        cats = {str(c): float(v) for c, v in zip(self.category_head.classes_, cat_p[0])}
        flagged = harm[0] >= self.classifier.threshold
        return {**result, "decision": "flag" if flagged else "allow", "harmful": float(harm[0]),
                "category": max(cats, key=cats.get) if flagged else None,
                "category_scores": cats, "normalized": normalize(text)}


def train_moderator(n_train: int = 3000, n_calibration: int = 1500, seed: int = 0,
                    max_false_positive_rate: float = 0.05) -> Moderator:
    """Train and calibrate a :class:`Moderator` on generated messages only.

    Training and calibration sets come from different seeds, so the threshold
    is chosen on messages the classifier has not seen.
    """
    texts, _, cats = generate_messages(n_train, seed=seed)
    cal_texts, _, cal_cats = generate_messages(n_calibration, seed=seed + 1)
    moderator = Moderator().fit(texts, cats)
    moderator.calibrate(cal_texts, cal_cats, max_false_positive_rate)
    return moderator


# ----------------------------------------------------------------------------
# 4b. A moderator trained on real tweets (Davidson et al. 2017)
# ----------------------------------------------------------------------------

DAVIDSON_CLASSES: tuple[str, ...] = ("hate", "offensive", "neither")  # the `class` column's 0, 1, 2
DAVIDSON_C_GRID: tuple[float, ...] = (1.0, 4.0, 16.0)  # chosen among on validation ROC AUC
DAVIDSON_MAX_FPR = 0.05  # the threshold flags at most 5 % of the validation split's "neither" tweets
_DAVIDSON_VERSION = "1"  # bump when training changes: it is part of the cache key


@dataclass(frozen=True)
class TextSplits:
    """A seeded, stratified train / validation / test split of labelled texts."""

    train_texts: list[str]
    train_labels: list[str]
    val_texts: list[str]
    val_labels: list[str]
    test_texts: list[str]
    test_labels: list[str]


def davidson_splits(seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15) -> TextSplits:
    """The Davidson et al. (2017) tweets split train / validation / test, stratified by class.

    Labels are :data:`DAVIDSON_CLASSES` names. The split is scikit-learn's
    ``train_test_split`` twice (test first, then validation from the rest),
    stratified, with ``random_state=seed``. Needs the ``davidson_offensive``
    dataset (:mod:`labkit.datasets`).

    Returns
    -------
    TextSplits
    """
    from sklearn.model_selection import train_test_split

    from labkit import datasets

    seed = ensure_int("seed", seed, low=0)
    val_fraction = ensure_float("val_fraction", val_fraction, 0.0, 0.5, low_open=True)
    test_fraction = ensure_float("test_fraction", test_fraction, 0.0, 0.5, low_open=True)
    table = datasets.load("davidson_offensive")
    texts = table.tweet.astype(str).tolist()
    labels = [DAVIDSON_CLASSES[int(c)] for c in table["class"]]
    rest_t, test_t, rest_y, test_y = train_test_split(texts, labels, test_size=test_fraction, random_state=seed,
                                                      stratify=labels)
    train_t, val_t, train_y, val_y = train_test_split(rest_t, rest_y, test_size=val_fraction / (1 - test_fraction),
                                                      random_state=seed, stratify=rest_y)
    return TextSplits(train_t, train_y, val_t, val_y, test_t, test_y)


def fit_best_C(train_texts: Sequence[str], train_labels, val_texts: Sequence[str], val_labels,
               grid: Sequence[float]) -> "TextClassifier":
    """Fit a :class:`TextClassifier` on the training texts for each ``C`` in ``grid`` and return the one
    with the highest ROC AUC on the validation texts (the first of equals); its threshold is not set."""
    from sklearn.metrics import roc_auc_score

    grid = [ensure_float("grid[i]", c, low=0.0, low_open=True) for c in grid]
    if not grid:
        raise ValueError("grid must hold at least one value of C")
    val_y = _as_labels(val_labels, len(_as_texts("val_texts", val_texts)))
    best, best_auc = None, -1.0
    for c in grid:
        clf = TextClassifier(C=c).fit(train_texts, train_labels)
        auc = roc_auc_score(val_y, clf.predict_proba(val_texts))
        if auc > best_auc:
            best, best_auc = clf, auc
    return best


def memoised_model(build: Callable[[int, bool], object], seed: int, rebuild: bool):
    """``build(seed, rebuild)`` for an ``lru_cache``-wrapped loader, after checking the arguments;
    ``rebuild`` clears the in-memory copies first (the cached file is then rebuilt by the loader)."""
    seed = ensure_int("seed", seed, low=0)
    if not isinstance(rebuild, bool):
        raise TypeError(f"rebuild must be True or False, got {type(rebuild).__name__}")
    if rebuild:
        build.cache_clear()
    return build(seed, rebuild)


def train_davidson_moderator(splits: TextSplits, C: float | None = None, extra_texts: Sequence[str] = (),
                             extra_labels: Sequence[str] = ()) -> Moderator:
    """Fit a :class:`Moderator` (harmful = hate or offensive; categories hate / offensive) on ``splits``.

    ``C`` is chosen from :data:`DAVIDSON_C_GRID` by ROC AUC of the binary
    score on the validation split when None; the threshold is calibrated on
    the validation split for at most :data:`DAVIDSON_MAX_FPR` of its
    "neither" tweets flagged. The test split is not read.

    Parameters
    ----------
    splits : TextSplits
        E.g. :func:`davidson_splits`.
    C : float > 0 or None
    extra_texts, extra_labels : sequences of equal length
        Added to the training split only (e.g. identity-term augmentation,
        lesson 19); labels are :data:`DAVIDSON_CLASSES` names.

    Returns
    -------
    Moderator
        ``categories=("hate", "offensive")``, ``benign="neither"``;
        ``moderator.classifier`` is the binary hateful-or-offensive classifier.
    """
    if not isinstance(splits, TextSplits):
        raise TypeError(f"splits must be a TextSplits, got {type(splits).__name__}")
    extra_texts = _as_texts("extra_texts", extra_texts)
    extra_labels = [ensure_choice("extra_labels", c, DAVIDSON_CLASSES) for c in extra_labels]
    if len(extra_labels) != len(extra_texts):
        raise ValueError(f"extra_labels must have one entry per extra text ({len(extra_texts)}), got {len(extra_labels)}")
    texts, labels = splits.train_texts + extra_texts, splits.train_labels + extra_labels
    if C is None:
        C = fit_best_C(texts, [c != "neither" for c in labels], splits.val_texts,
                       [c != "neither" for c in splits.val_labels], DAVIDSON_C_GRID).C
    moderator = Moderator(C=ensure_float("C", C, low=0.0, low_open=True), categories=DAVIDSON_CLASSES[:2],
                          benign="neither", balance_categories=True).fit(texts, labels)
    moderator.calibrate(splits.val_texts, splits.val_labels, DAVIDSON_MAX_FPR)
    return moderator


def _logreg_payload(prefix: str, model: LogisticRegression) -> dict:
    import torch

    return {f"{prefix}_coef": torch.from_numpy(model.coef_.copy()),
            f"{prefix}_intercept": torch.from_numpy(model.intercept_.copy()),
            f"{prefix}_classes": json.dumps([c.item() if hasattr(c, "item") else c for c in model.classes_])}


def _logreg_from_payload(prefix: str, payload: dict, C: float) -> LogisticRegression:
    model = LogisticRegression(C=C, max_iter=2000)
    model.coef_ = payload[f"{prefix}_coef"].numpy()
    model.intercept_ = payload[f"{prefix}_intercept"].numpy()
    model.classes_ = np.asarray(json.loads(payload[f"{prefix}_classes"]))
    model.n_features_in_ = model.coef_.shape[1]
    return model


def classifier_payload(classifier: TextClassifier) -> dict:
    """A fitted :class:`TextClassifier` as tensors, strings and numbers (for :func:`labkit.lm.cache.cached`)."""
    import torch

    pipe = classifier._check_fitted()
    blocks = classifier._tfidf_blocks()
    payload = {"C": classifier.C, "max_chars": classifier.max_chars, "threshold": float(classifier.threshold),
               **_logreg_payload("logreg", pipe["logreg"])}
    for prefix, block in zip(("", "word_"), blocks):  # no word_ keys for characters only: older payloads still load
        vocabulary = block["counts"].vocabulary_
        payload[f"{prefix}ngrams"] = json.dumps(sorted(vocabulary, key=vocabulary.__getitem__))
        payload[f"{prefix}idf"] = torch.from_numpy(block["tfidf"].idf_.copy())
    if classifier.word_ngrams is not None:
        payload["word_ngram_range"] = json.dumps(list(classifier.word_ngrams))
    return payload


def classifier_from_payload(payload: dict) -> TextClassifier:
    """The inverse of :func:`classifier_payload`: the same scores, bit for bit."""
    word_ngrams = tuple(json.loads(payload["word_ngram_range"])) if "word_ngram_range" in payload else None
    classifier = TextClassifier(C=float(payload["C"]), max_chars=int(payload["max_chars"]), word_ngrams=word_ngrams)
    classifier.pipeline = pipe = classifier._pipeline()
    for prefix, block in zip(("", "word_"), classifier._tfidf_blocks()):
        block["counts"].vocabulary_ = {gram: i for i, gram in enumerate(json.loads(payload[f"{prefix}ngrams"]))}
        block["tfidf"].idf_ = payload[f"{prefix}idf"].numpy()
    classifier._tfidf_blocks()[0]["counts"]._cache = {}  # the character counts' word cache, made by fit
    pipe.steps[-1] = ("logreg", _logreg_from_payload("logreg", payload, classifier.C))
    classifier.threshold = float(payload["threshold"])
    return classifier


def moderator_payload(moderator: Moderator) -> dict:
    """A fitted :class:`Moderator` as tensors, strings and numbers (for :func:`labkit.lm.cache.cached`)."""
    if moderator.category_head is None:
        raise RuntimeError("this Moderator is not fitted yet: call fit(texts, categories) first")
    return {**classifier_payload(moderator.classifier), "moderator_max_chars": moderator.max_chars,
            "categories": json.dumps(list(moderator.categories)), "benign": moderator.benign,
            "balance_categories": int(moderator.balance_categories), **_logreg_payload("head", moderator.category_head)}


def moderator_from_payload(payload: dict) -> Moderator:
    """The inverse of :func:`moderator_payload`."""
    moderator = Moderator(C=float(payload["C"]), max_chars=int(payload["moderator_max_chars"]),
                          categories=json.loads(payload["categories"]), benign=payload["benign"],
                          balance_categories=bool(payload["balance_categories"]))
    moderator.classifier = classifier_from_payload(payload)
    moderator.category_head = _logreg_from_payload("head", payload, moderator.classifier.C)
    return moderator


def _davidson_key(seed: int) -> str:
    from labkit import datasets

    blob = json.dumps({"seed": seed, "grid": DAVIDSON_C_GRID, "fpr": DAVIDSON_MAX_FPR, "version": _DAVIDSON_VERSION,
                       "data": datasets.REGISTRY["davidson_offensive"].sha256}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=4)
def _davidson_moderator(seed: int, rebuild: bool) -> Moderator:
    from labkit.lm.cache import cached

    return cached(f"davidson-moderator-s{seed}", _davidson_key(seed),
                  lambda: train_davidson_moderator(davidson_splits(seed)), moderator_payload, moderator_from_payload,
                  rebuild=rebuild)


def davidson_moderator(seed: int = 0, rebuild: bool = False) -> Moderator:
    """The :class:`Moderator` trained on the Davidson tweets' train split (:func:`train_davidson_moderator`).

    Trained once (about ten seconds), then loaded from labkit's model cache
    (:func:`labkit.lm.cache.cached`) and kept in memory for the session.
    Needs the ``davidson_offensive`` dataset.

    Parameters
    ----------
    seed : int >= 0
        Seed of :func:`davidson_splits`.
    rebuild : bool
        Train again even when cached.
    """
    return memoised_model(_davidson_moderator, seed, rebuild)


def davidson_classifier(seed: int = 0) -> TextClassifier:
    """The binary hateful-or-offensive classifier of :func:`davidson_moderator` (its threshold calibrated).

    ``davidson_classifier().predict_proba(texts)`` scores texts in [0, 1];
    ``.predict(texts)`` applies the validation-calibrated threshold.
    """
    return davidson_moderator(seed).classifier


def _build_davidson_for_prebuild(rebuild: bool) -> Moderator | None:
    from labkit import datasets

    if not datasets.require("davidson_offensive"):
        return None  # offline with no mirror: prebuild says so in one line and goes on
    return davidson_moderator(0, rebuild=rebuild)


def _register_course_models() -> None:
    from labkit.lm.cache import CourseModel, cache_path, register_course_model

    register_course_model(CourseModel("davidson-moderator-s0", _build_davidson_for_prebuild,
                                      lambda: cache_path("davidson-moderator-s0", _davidson_key(0))))


_register_course_models()


# ----------------------------------------------------------------------------
# 5. Metrics
# ----------------------------------------------------------------------------


def precision_recall_f1(y_true, y_pred) -> tuple[float, float, float]:
    """Precision TP/(TP+FP), recall TP/(TP+FN) and F1 = 2PR/(P+R); 0 where undefined.

    ``y_true`` and ``y_pred``: booleans (or 0/1), one per message, at least one.
    """
    t, p = ensure_array("y_true", y_true), ensure_array("y_pred", y_pred)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D and the same length, got {t.shape} and {p.shape}")
    if len(t) == 0:
        raise ValueError("y_true and y_pred must hold at least one message")
    for name, a in (("y_true", t), ("y_pred", p)):
        if not np.isin(a, (0.0, 1.0)).all():
            raise ValueError(f"{name} must hold booleans (or 0/1)")
    t, p = t.astype(bool), p.astype(bool)
    tp = int(np.sum(t & p))
    fp = int(np.sum(~t & p))
    fn = int(np.sum(t & ~p))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def category_report(true_categories: Sequence[str], predicted: Sequence[str],
                    categories: Sequence[str] = CATEGORIES) -> dict[str, tuple[float, float, float]]:
    """Precision, recall and F1 of each category, one-vs-rest."""
    for name, value in (("true_categories", true_categories), ("predicted", predicted), ("categories", categories)):
        if isinstance(value, (str, bytes)):
            raise TypeError(f"{name} must be a sequence of category names, not a single string")
    t, p = np.asarray(list(true_categories)), np.asarray(list(predicted))
    return {c: precision_recall_f1(t == c, p == c) for c in categories}


def rates_by_group(groups: Sequence[str], hits) -> "pd.DataFrame":
    """Per group: n, the share of ``hits`` that are True and its 95 % Wilson interval.

    Parameters
    ----------
    groups : sequence of str
        The group of each item (e.g. HateCheck's functionality).
    hits : array-like of bool, one per item
        E.g. "the classifier got this case right".

    Returns
    -------
    pandas.DataFrame
        Columns ``group, n, rate, ci_low, ci_high``, one row per group in
        sorted order.
    """
    import pandas as pd

    from labkit.intervals import wilson_interval

    if isinstance(groups, (str, bytes)):
        raise TypeError("groups must be a sequence of group names, not a single string")
    groups = [str(g) for g in groups]
    h = ensure_array("hits", hits, ndim=1)
    if len(h) != len(groups) or not len(groups):
        raise ValueError(f"hits must have one entry per group label ({len(groups)}), got {len(h)}")
    if not np.isin(h, (0.0, 1.0)).all():
        raise ValueError("hits must hold booleans (or 0/1)")
    rows = []
    for g in sorted(set(groups)):
        mask = np.array([x == g for x in groups])
        k, n = int(h[mask].sum()), int(mask.sum())
        low, high = wilson_interval(k, n)
        rows.append({"group": g, "n": n, "rate": k / n, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def pii_span_recall(texts: Sequence[str], gold: Sequence[Sequence[tuple[int, int, str]]],
                    finder: Callable[[str], list[PIISpan]] = find_pii) -> dict[str, tuple[int, int]]:
    """Per kind, (labelled spans fully covered by a detected span, labelled spans).

    ``gold[i]`` lists ``(start, end, kind)`` for ``texts[i]``; only kinds in
    :data:`PII_KINDS` are counted. A labelled span counts as found when a
    detected span (any kind) covers it: redaction is what matters.
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be a sequence of strings, not a single string")
    texts, gold = list(texts), list(gold)
    if len(texts) != len(gold):
        raise ValueError(f"gold must list the spans of each text ({len(texts)}), got {len(gold)} entries")
    if not callable(finder):
        raise TypeError(f"finder must be callable, got {type(finder).__name__}")
    counts: dict[str, list[int]] = {k: [0, 0] for k in PII_KINDS}
    for text, spans in zip(texts, gold):
        found = finder(text)
        for s, e, kind in spans:
            if kind not in counts:
                continue
            counts[kind][1] += 1
            counts[kind][0] += any(f.start <= s and e <= f.end for f in found)
    return {k: (v[0], v[1]) for k, v in counts.items()}


# ----------------------------------------------------------------------------
# 6. Widget
# ----------------------------------------------------------------------------


def plot_moderation(moderator: Moderator, text: str) -> plt.Figure:
    """The widget's picture: harmful probability against the calibrated
    threshold, category probabilities, and the decision with the redacted text."""
    result = moderator.moderate(text)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 2.8), gridspec_kw={"width_ratios": [1, 2]})
    harm = result["harmful"]
    ax1.bar(["harmful"], [0.0 if np.isnan(harm) else harm],
            color="tab:red" if result["decision"] != "allow" else "tab:green")
    ax1.axhline(result["threshold"], color="k", lw=1.5, label="threshold")
    ax1.set(ylim=(0, 1), ylabel="probability")
    ax1.legend(loc="upper right", fontsize=8)
    cats = result["category_scores"] or {c: 0.0 for c in moderator.categories}
    ax2.barh(list(cats), list(cats.values()), color="tab:gray")
    ax2.set(xlim=(0, 1), xlabel="category probability (if flagged)")

    def clip(s: str) -> str:
        s = s if len(s) <= 60 else s[:57] + "..."
        # The default font lacks most scripts: show characters beyond Latin as "?" (no missing-glyph warnings).
        return "".join(c if c.isprintable() and ord(c) < 0x250 else "?" for c in s)
    title = f"{result['decision'].upper()}  |  redacted: {clip(result['redacted'])!r}\nnormalised: {clip(result['normalized'])!r}"
    # matplotlib reads $...$ as mathtext: escape every dollar sign.
    fig.suptitle(title.replace("$", r"\$"), fontsize=9)
    fig.tight_layout()
    return fig


def moderation_widget(moderator: Moderator):
    """Lesson 14's widget: a message box redrawing :func:`plot_moderation` for ``moderator``.

    Parameters
    ----------
    moderator : Moderator
        E.g. from :func:`train_moderator`.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`, showing an obfuscated threat with a phone number.
    """
    if not isinstance(moderator, Moderator):
        raise TypeError(f"moderator must be a Moderator, got {type(moderator).__name__}")
    return interactive_figure(functools.partial(plot_moderation, moderator),
                              text=text_box("message", "I will h u r t you, call me at 555-123-4567"))


__all__ = [
    "normalize", "PIISpan", "find_pii", "redact_pii", "luhn_valid", "iban_valid", "PII_KINDS",
    "CATEGORIES", "generate_messages", "ATTACKS", "obfuscate", "TextClassifier", "Moderator",
    "train_moderator", "threshold_for_fpr", "CharNgramCounts", "precision_recall_f1", "category_report", "pii_span_recall", "plot_moderation",
    "moderation_widget", "DAVIDSON_CLASSES", "DAVIDSON_C_GRID", "DAVIDSON_MAX_FPR", "TextSplits", "davidson_splits",
    "train_davidson_moderator", "classifier_payload", "classifier_from_payload", "moderator_payload", "moderator_from_payload", "davidson_moderator",
    "davidson_classifier", "rates_by_group", "fit_best_C", "memoised_model", "small_caps", "dilute", "DILUTION_BUDGET", "evasion_problem",
]
