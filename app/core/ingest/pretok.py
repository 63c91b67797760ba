"""Where the DeepSeek V4 pre-tokenizer is bound to cut, so token counts add up.

BPE never merges across a pre-token, so the count of ``a + b`` is
``count(a) + count(b)`` whenever the join is a pre-token boundary of ``a + b``
*and* ``a`` and ``b`` pre-tokenize alone as they do inside ``a + b``. We call
such a join a *safe cut*. Counting a corpus as a sum of pieces cut there is
exact, and lets ingestion tokenize each text once while also knowing the
tokens of its rendered, line-numbered form.

V4's ``tokenizer.json`` pre-tokenizes in three steps (``PRE_TOKENIZER`` below;
a test checks the shipped file still says exactly this):

1. ``\\p{N}{1,3}`` isolated: digit runs, in chunks of three from the left;
2. ``[一-龥぀-ゟ゠-ヿ]+`` isolated: CJK ideographs and kana;
3. in each remaining piece, the leftmost-first alternation
   ``[P][A-Za-z]+ | [^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+ | " ?"[\\p{P}\\p{S}]+[\\r\\n]*
   | \\s*[\\r\\n]+ | \\s+(?!\\S) | \\s+`` (``P`` = ASCII punctuation).

Safe cuts used by Lectern (proofs in ``docs`` of each function, tested with
hypothesis against direct counts in ``tests/unit/test_ingest_measure.py``):

* **digit edge**: one side of the cut is a ``\\p{N}`` char and the other is
  not; step 1 isolates the digit run, so steps 2-3 never see across it.
* **newline then text**: the left piece ends with ``\\n`` and the right piece
  starts with a (possibly empty) run of non-newline whitespace followed by a
  non-whitespace char. No alternative can hold ``\\n`` followed by a
  non-newline char except as the *end* of a newline run (alternatives 3 and
  4 end at the last newline of the run), alternative 5's lookahead is never
  reached at a position whose whitespace run contains the newline
  (alternative 4 wins there first), and nothing looks behind.
"""

from __future__ import annotations

import enum
import functools

# The exact pre-tokenizer these proofs assume (a test compares it with tokenizer.json).
PRE_TOKENIZER_PATTERNS = (
    "\\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?"
    "[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
)

# Oniguruma's ``\s`` (Unicode White_Space) without CR and LF. Python's
# ``str.isspace`` also counts U+001C..U+001F, which ``\s`` does not.
WHITESPACE = (
    "\t\x0b\x0c \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_CJK_RANGES = ((0x4E00, 0x9FA5), (0x3040, 0x309F), (0x30A0, 0x30FF))


class CharClass(enum.Enum):
    NEWLINE = "newline"  # \r or \n
    SPACE = "space"  # WHITESPACE
    DIGIT = "digit"  # \p{N}, isolated by step 1
    CJK = "cjk"  # step 2's ranges
    LETTER = "letter"  # \p{L} or \p{M}, outside the CJK ranges
    PUNCT = "punct"  # \p{P} or \p{S}
    OTHER = "other"  # controls, format chars, unassigned...


# Classes that always end a pre-token before a following PUNCT/SPACE/OTHER char.
WORDLIKE = frozenset({CharClass.DIGIT, CharClass.CJK, CharClass.LETTER})


@functools.cache
def _matchers() -> tuple[object, object, object]:
    from tokenizers import Regex
    from tokenizers.pre_tokenizers import Split

    def split(pattern: str) -> object:
        return Split(Regex(pattern), behavior="removed")

    return split("\\p{N}"), split("[\\p{L}\\p{M}]"), split("[\\p{P}\\p{S}]")


def _engine_matches(matcher: object, ch: str) -> bool:
    # With behavior="removed", a char the pattern matches leaves nothing behind.
    return not matcher.pre_tokenize_str(ch)  # type: ignore[attr-defined]


@functools.cache
def char_class(ch: str) -> CharClass:
    """The class of ``ch`` as the tokenizer's own regex engine sees it.

    Unicode categories are asked of the tokenizer's engine (Oniguruma), not of
    Python's ``unicodedata``, whose Unicode version may differ.
    """
    if ch in "\r\n":
        return CharClass.NEWLINE
    if ch in WHITESPACE:
        return CharClass.SPACE
    code = ord(ch)
    if any(lo <= code <= hi for lo, hi in _CJK_RANGES):
        return CharClass.CJK
    if ch.isascii():
        if ch.isdigit():
            return CharClass.DIGIT
        if ch.isalpha():
            return CharClass.LETTER
        return CharClass.PUNCT if 0x21 <= code <= 0x7E else CharClass.OTHER
    digit, letter, punct = _matchers()
    if _engine_matches(digit, ch):
        return CharClass.DIGIT
    if _engine_matches(letter, ch):
        return CharClass.LETTER
    if _engine_matches(punct, ch):
        return CharClass.PUNCT
    return CharClass.OTHER


def is_newline_cut(text: str, cut: int) -> bool:
    """True when ``text[:cut]`` and ``text[cut:]`` meet at a "newline then text" safe
    cut (see above), so ``count(text) == count(text[:cut]) + count(text[cut:])``: the
    left piece ends with ``\\n`` and the right one starts with a (possibly empty) run
    of non-newline whitespace, then a non-whitespace char. Either end of ``text`` is
    trivially a cut. Reads only the chars around ``cut``, never copies ``text``.
    """
    if cut <= 0 or cut >= len(text):
        return True
    if text[cut - 1] != "\n":
        return False
    i = cut
    while i < len(text) and text[i] in WHITESPACE:
        i += 1
    return i < len(text) and text[i] not in "\r\n"


def tail_start(line: str) -> int:
    """Index after the last digit, letter or CJK char of ``line`` (0 if none).

    The cut there is a pre-token boundary whatever follows the line: the char
    before it ends its pre-token (a letter run, digit run or CJK run stops at a
    char of another class) and nothing looks behind. So appending newlines or
    blank lines to ``line`` changes only the pre-tokens of ``line[k:]``.
    """
    for j in range(len(line) - 1, -1, -1):
        ch = line[j]
        if ch.isascii():
            if ch.isalnum():
                return j + 1
        elif char_class(ch) in WORDLIKE:
            return j + 1
    return 0


def head(line: str) -> str:
    """The prefix ``H`` of a non-blank ``line`` that a TAB put before it changes.

    ``count("\\t" + line + rest) == count("\\t" + H) - count(H) + count(line + rest)``
    for any ``rest``; the cases (``ws`` = leading whitespace run, ``c`` = the
    char after it):

    * no ``ws``, ``c`` a letter: TAB joins the letter run (alternative 2's
      optional prefix): ``H`` = the letter run.
    * no ``ws``, ``c`` anything else: TAB is a pre-token alone: ``H = ""``.
    * ``ws``, ``c`` a digit or CJK: the whitespace is a piece of its own
      (steps 1-2), one pre-token either way: ``H = ws``.
    * ``ws``, ``c`` anything else: alternative 5 takes all but the last
      whitespace char, which then goes with ``c`` (or alone) the same way
      with or without the TAB: ``H = ws[:-1]``.
    """
    n = len(line)
    i = 0
    while i < n and line[i] in WHITESPACE:
        i += 1
    if i == n:
        raise ValueError("head() needs a line with a non-whitespace char")
    cls = char_class(line[i])
    if i == 0:
        if cls is not CharClass.LETTER:
            return ""
        j = 1
        while j < n and char_class(line[j]) is CharClass.LETTER:
            j += 1
        return line[:j]
    if cls in (CharClass.DIGIT, CharClass.CJK):
        return line[:i]
    return line[: i - 1]
