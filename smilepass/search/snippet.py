"""The highlighted excerpt under a search result, cut from the original text in Python.

Every piece of text is escaped (Markup.escape) and only our own <mark> tags are added, so whatever a
ticket says shows as text. A word is highlighted when its term (text.stem of its folded form) is one of
the search's terms, or starts with the unfinished last word."""
from markupsafe import Markup

from .query import Search
from .text import WORD, fold, stem

WIDTH = 180  # characters of an excerpt
BEFORE = 50  # of them before the first hit


def _is_hit(word: str, terms: set[str], prefixes: tuple[str, ...]) -> bool:
    for part in WORD.findall(fold(word)):
        if stem(part) in terms or (prefixes and part.startswith(prefixes)):
            return True
    return False


def highlight(text: str, search: Search, width: int | None = None) -> tuple[Markup, bool]:
    """The text (or, with width, an excerpt around its first hit) with the hits marked, and whether
    it had any."""
    text = " ".join((text or "").split())
    terms = set(search.words)
    prefixes = tuple(group.prefix for group in search.groups if group.prefix)
    hits = [m for m in WORD.finditer(text) if _is_hit(m.group(), terms, prefixes)]
    start, end = 0, len(text)
    if width is not None:
        start = max(0, (hits[0].start() if hits else 0) - BEFORE)
        if start:
            start = text.find(" ", start) + 1 or start  # from a word's beginning
        end = min(len(text), start + width)
        if end < len(text):
            end = text.rfind(" ", start, end) if text.rfind(" ", start, end) > start else end
    out = [Markup("…")] if start else []
    position = start
    for hit in hits:
        if hit.start() < start or hit.end() > end:
            continue
        out += [Markup.escape(text[position:hit.start()]), Markup("<mark>"), Markup.escape(hit.group()),
                Markup("</mark>")]
        position = hit.end()
    out.append(Markup.escape(text[position:end]))
    if end < len(text):
        out.append(Markup("…"))
    return Markup("").join(out), bool(hits)


def excerpt(texts: list[str], search: Search) -> Markup:
    """An excerpt of the first text with a hit (else of the first text)."""
    texts = [t for t in texts if t and t.strip()]
    for text in texts:
        marked, hit = highlight(text, search, WIDTH)
        if hit:
            return marked
    return highlight(texts[0], search, WIDTH)[0] if texts else Markup("")
