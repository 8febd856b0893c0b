"""Words into index terms, in Python, so that SQLite and PostgreSQL index exactly the same terms.

FTS5's porter tokenizer stems English only and PostgreSQL's configurations stem one language each. So
each word is lower-cased, its diacritics folded (ü -> u, ß -> ss) and stemmed by the Snowball German
stemmer and then the English one (package snowballstemmer): "Brüche", "Bruch" -> "bruch", "fractures" ->
"fractur", "trays" -> "tray". Stemming twice over-stems a little, which only widens matches; what was
typed goes through the same steps, so both sides agree. The databases then only split on spaces:
FTS5's unicode61 tokenizer (remove_diacritics 2) and PostgreSQL's `simple` configuration."""
import re
import unicodedata
from functools import lru_cache

import snowballstemmer

# Letters and digits; "_" and everything else (punctuation, emoji, symbols) separates words.
WORD = re.compile(r"[^\W_]+")
_GERMAN = snowballstemmer.stemmer("german")
_ENGLISH = snowballstemmer.stemmer("english")
# A term longer than this is no word anyone types (a hash, a base64 blob): cut, still findable by prefix.
TERM_MAX = 40


def fold(text: str) -> str:
    """Lower case without diacritics: "Brüche" -> "bruche", "Straße" -> "strasse"."""
    if text.isascii():  # most text: nothing to fold but the case (a demo of a million replies: 4 s less)
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=50_000)
def stem(word: str) -> str:
    """One folded word's term."""
    if word.isdigit():
        return word
    return _ENGLISH.stemWord(_GERMAN.stemWord(word))[:TERM_MAX] or word[:TERM_MAX]


def words(text: str) -> list[str]:
    """The folded words of a text, in order."""
    return WORD.findall(fold(text or ""))


def terms(text: str) -> str:
    """The text as the index holds it: its terms separated by spaces."""
    return " ".join(stem(word) for word in words(text))
