"""What was typed, as a search: ticket numbers, words (the last one as a prefix while typing), phrases
in quotes. Only letters and digits reach the database (text.WORD), each quoted by us, so FTS syntax
typed by a user ("*", NEAR, OR, "-", ":", unbalanced quotes) is just words, and nothing raises.

Access: a clinician's query matches their own tickets (and cases), in titles and public text only:
internal notes are outside the columns it searches (SQLite: a column filter; PostgreSQL: public_doc),
so they reach no result, snippet, count or ranking. Their ticket queries also require their own
requester term (index.owner_term): the index gives their matches only."""
import re
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter

import peewee as pw

from ..db import database, is_postgres
from ..models import Case, Status, Ticket, User
from .index import own_prefix, owner_term, pair_term
from .text import TERM_MAX, WORD, fold, stem

QUERY_MAX = 200  # characters of what was typed that count; the rest is ignored
GROUPS_MAX = 12  # words and phrases
FEW_MATCHES = 2000  # up to this many, the ticket table gets the matching ids rather than the subquery
RANK_MAX = 1000  # a search ranks the newest this many of its matches (see ranked_tickets)
COUNT_MAX = 1000  # above this many tickets found, the table's filter counts say "1,000+" (not counted)
NUMBER = re.compile(r"^\s*(?:sp\s*[-‐]?\s*)?#?\s*0*(\d{1,9})\s*$", re.IGNORECASE)
PHRASE = re.compile(r'"([^"]*)"')
LOOSE_SPLIT = re.compile(r"[^\w\-‐./@+]+")


@dataclass
class Group:
    """A word (one term) or a phrase (terms in this order); prefix: the last term may go on."""
    terms: list[str]
    prefix: str = ""  # the unfinished last word as typed (folded): matches as its stem or as a prefix

    @property
    def covered(self) -> bool:
        """The last word's stem begins with what was typed ("tray", "scan"): every match of the stem
        is a match of the prefix, so the prefix alone says the same (FTS5 read both doclists and merged
        them: "tray" as typed, 2.4 ms a page of the table where the prefix alone took 1.4 ms)."""
        return bool(self.prefix) and self.terms[-1].startswith(self.prefix)

    def tsquery(self) -> str:
        """This group for to_tsquery('simple', …): its terms in order (positions), the last as a prefix
        while typed."""
        part = "(" + " <-> ".join(self.terms) + ")"
        if not self.prefix:
            return part
        begun = "(" + " <-> ".join([*self.terms[:-1], self.prefix + ":*"]) + ")"
        return begun if self.covered else f"({part} | {begun})"

    def pairs_tsquery(self) -> str:
        """The pair lexemes (index.pair_term) a document holding this group must hold, as tsquery text: every
        two adjacent terms, the last two as typed (the unfinished word as a prefix of the pair). Empty for
        one word."""
        if len(self.terms) < 2:
            return ""
        before = [f"'{pair_term(first, second)}'" for first, second in zip(self.terms, self.terms[1:-1], strict=False)]
        whole = f"'{pair_term(self.terms[-2], self.terms[-1])}'"
        begun = f"'{pair_term(self.terms[-2], self.prefix)}':*"
        last = whole if not self.prefix else begun if self.covered else f"({whole} | {begun})"
        return "(" + " & ".join([*before, last]) + ")"


@dataclass
class Search:
    text: str
    groups: list[Group] = field(default_factory=list)
    number: int | None = None  # a ticket number: SP-000042, sp42, #42, 42

    def __bool__(self) -> bool:
        return bool(self.groups) or self.number is not None

    @property
    def words(self) -> list[str]:
        """The folded terms, for highlighting."""
        return [term for group in self.groups for term in group.terms]

    def fts5(self, staff: bool, owner: int | None = None) -> str:
        """The FTS5 query for search_ticket: staff search every text column, a clinician title and body;
        with owner, only that requester's tickets. Typed text never reaches the owner column."""
        columns = "title body internal" if staff else "title body"
        mine = f' AND {{owner}} : "{owner_term(owner, False)}"' if owner is not None else ""
        return f"{{{columns}}} : {self.fts5_expression()}{mine}"

    def fts5_own(self, owner: int, statuses=Status) -> str:
        """The FTS5 query for the tickets of this requester in these statuses that hold the words and phrases
        in their title or public text: through their own terms (index.own_terms, a list per status), the same
        matches as fts5(False, owner) in those statuses."""
        each = " OR ".join(self.fts5_expression(own_prefix(owner, status)) for status in statuses)
        return f"{{mine}} : ({each})"

    def fts5_expression(self, mark: str = "") -> str:
        """The words and phrases as an FTS5 expression over every column (search_case has one); with mark,
        each term with it in front (index.own_terms)."""
        parts = []
        for group in self.groups:
            part = '"' + " ".join(mark + term for term in group.terms) + '"'
            if group.prefix:
                begun = '"' + " ".join(mark + term for term in [*group.terms[:-1], group.prefix]) + '"*'
                part = begun if group.covered else f"({part} OR {begun})"
            parts.append(part)
        return "(" + " AND ".join(parts) + ")"

    def tsquery(self) -> str:
        """The tsquery text for to_tsquery('simple', …), phrases by their positions: what ranking reads
        (ts_rank). What finds the documents is pg_tsqueries."""
        return " & ".join(group.tsquery() for group in self.groups)

    def pg_tsqueries(self) -> tuple[str, str]:
        """What a PostgreSQL entry must match: (text for to_tsquery('simple', …) against a document,
        tsquery text of pair lexemes against a pair column, to be cast: to_tsquery would split
        "~upp~arch"); either may be empty. A two-word group is its pair alone: the pairs are the text's
        adjacent terms, so that is exact, and the GIN index answers it without reading the row (positions
        are checked in the row: the recheck). A longer phrase keeps its positions, checked only in the
        entries holding all its pairs."""
        positions, pairs = [], []
        for group in self.groups:
            if len(group.terms) != 2:
                positions.append(group.tsquery())
            if len(group.terms) > 1:
                pairs.append(group.pairs_tsquery())
        return " & ".join(positions), " & ".join(pairs)


def parse(typed: str | None) -> Search:
    text = (typed or "")[:QUERY_MAX]
    search = Search(text.strip())
    found = NUMBER.match(text)
    if found:
        search.number = int(found.group(1)) or None
    phrases = PHRASE.findall(text)
    rest = PHRASE.sub(" ", text).replace('"', " ")
    groups = []
    for phrase in phrases:
        terms = [stem(w) for w in WORD.findall(fold(phrase))]
        if terms:
            groups.append(Group(terms))
    # Words joined by - . / _ @ + (case numbers, file names, e-mail) stay together as a phrase; any other
    # character between words (spaces, brackets, FTS syntax) separates them.
    loose = [chunk for chunk in LOOSE_SPLIT.split(rest) if chunk]
    for position, chunk in enumerate(loose):
        terms = [stem(w) for w in WORD.findall(fold(chunk))]
        if not terms:
            continue
        # As you type: the last word, not yet followed by a space or a quote, may be unfinished.
        typing = position == len(loose) - 1 and text[-1:].isalnum()
        prefix = WORD.findall(fold(chunk))[-1][:TERM_MAX] if typing else ""
        groups.append(Group(terms, prefix=prefix))
    search.groups = groups[:GROUPS_MAX]
    return search


def _owner(user: User) -> int | None:
    """Whose tickets the index is to give: a clinician's own (None: staff, everyone's)."""
    return None if user.is_staff else user.id


def _pg_match(user: User, search: Search) -> tuple[str, list]:
    """The PostgreSQL condition on search_ticket (alias s) and its parameters: words (and longer phrases'
    positions) in the documents through to_tsquery, pairs in the pair columns cast (to_tsquery would
    split "~upp~arch" and "=7"), a clinician's own lexeme with the pairs if any (one GIN index read for a
    phrase) else with the words. Three texts of SQL for each kind of user at most, whatever was typed
    (db.prepared keeps one statement per text)."""
    text, pairs = search.pg_tsqueries()
    mine = [] if user.is_staff else [f"'{owner_term(user.id, True)}'"]
    kind = "staff" if user.is_staff else "public"
    conditions, params = [], []
    if text:
        conditions.append(f"s.{kind}_doc @@ to_tsquery('simple', %s)" if user.is_staff or pairs else
                          f"s.{kind}_doc @@ (to_tsquery('simple', %s) && %s::tsquery)")
        params += [text] if user.is_staff or pairs else [text, *mine]
    if pairs:
        conditions.append(f"s.{kind}_pairs @@ %s::tsquery")
        params.append(" & ".join([pairs, *mine]))
    return " AND ".join(conditions), params


def _matches(user: User, search: Search) -> tuple[str, list]:
    """The ids this search finds in the index, as SQL, with the typed number: for a clinician only their
    own tickets (the typed number is checked by the table's own requester condition)."""
    parts, params = [], []
    if search.groups:
        if is_postgres():
            condition, match_params = _pg_match(user, search)
            parts.append(f"SELECT s.ticket_id FROM search_ticket s WHERE {condition}")
            params += match_params
        else:
            parts.append("SELECT rowid FROM search_ticket WHERE search_ticket MATCH ?")
            params.append(search.fts5(True) if user.is_staff else search.fts5_own(user.id))
    if search.number is not None:
        parts.append(f"SELECT {int(search.number)}")
    return " UNION ALL ".join(parts), params


def many(matches: str, params: list):
    """A condition through the index subquery, for many matches (a common word): SQLite would look each
    one up by primary key and sort them all for a page of 25. The unary plus takes the primary key out of
    its choices, so it walks the table's own index (the sort's, or the clinician's tickets) and checks
    each ticket against the matches, stopping after a page: 8,000 matches among 100,000 tickets, 13 ms
    became 2 ms."""
    column = Ticket.id if is_postgres() else pw.NodeList((pw.SQL("+"), Ticket.id), glue="")
    return column.in_(pw.SQL(f"({matches})", params))


def found_between(matches: str, params: list, low: int, high: int) -> set[int]:
    """The index's matches (SQLite, _matches without a typed number) among the ids low..high: FTS5 reads
    only that stretch of each term's list of tickets (55 of "tray"'s 11,520 matches between two ids 512
    apart at 100,000 tickets: 0.02 ms, all of them 2.4 ms)."""
    return {i for (i,) in database.execute_sql(f"{matches} AND rowid BETWEEN ? AND ?", [*params, low, high])}


def ticket_filter(user: User, search: Search):
    """A condition on Ticket for the ticket table: the tickets this search finds (visibility is the
    table's own requester condition). One IN (subquery), the typed number included in it, so that the
    planner can drive the query from the index's matches (an OR beside it would scan the tickets)."""
    if not search:
        return None
    matches, params = _matches(user, search)
    few = [i for (i,) in database.execute_sql(f"{matches} LIMIT {FEW_MATCHES + 1}", params).fetchall()]
    return _among(few) if len(few) <= FEW_MATCHES else many(matches, params)


def _among(ids: list[int]):
    """Ticket.id IN (these ids), written out: they are integers from the database, and a parameter each
    (peewee builds a node per value) cost more than the query they were for (200 ids: ~1 ms)."""
    if not ids:
        return Ticket.id.in_([])
    return Ticket.id.in_(pw.SQL("(" + ",".join(str(int(i)) for i in ids) + ")"))


@dataclass
class TableSearch:
    """What the ticket table needs of a search: which tickets (condition) and how many of each status.
    counts is None when more than COUNT_MAX tickets are found (a clinician: more than FEW_MATCHES of their
    own): the table then says "1,000+" (more_than) instead of counting, since counting a common word's
    matches per status reads every one of them."""
    found: object  # the condition on Ticket (a typed number's search); None when `ids` says which tickets
    counts: dict | None
    more_than: int = 0  # when not counted: at least this many more were found
    # The index subquery and its parameters when the condition is that subquery (many matches): the same
    # SQL text for every such search of a kind, so the table can reuse its statement (db.prepared).
    subquery: tuple[str, list] | None = None
    # The tickets found, when the condition is just those (few matches), as the one value `among` takes (see
    # ids_value), so the table's statement is the same for every such search of a kind too; and how many.
    ids: object = None
    size: int = 0
    # Staff on SQLite, not counted: about how many ticket ids there are per match (0.0: not known), which
    # sizes the first stretch of the table's walk (support.listing._walked_page).
    spacing: float = 0.0


# A clinician's table with at least this many of their tickets found walks their tickets in the sort's order
# (see among).
WALK_FROM = 100


def among(ids, walk: bool = False):
    """A condition on Ticket: its id is one of these, given as one value (`ids`: what ids_value makes of
    a list), so that the statement's text does not depend on them (db.prepared).

    SQLite looks each one up by primary key and sorts them; with walk, it walks the table's own index
    instead (for a clinician: their tickets in the sort's order) and checks each against them, stopping
    after a page. A clinician's 548 "scan" tickets of their 2,563: 1.47 ms looked up, 0.09 ms walked (no
    match at all: 0.22 ms walked). Staff would walk every ticket when few match: never for them.
    PostgreSQL alike ("id + 0" is not the primary key): 1,558 "att*" tickets of a clinician's 5,057 (a
    million demo replies) 7-10 ms looked up and sorted, 0.1-0.6 ms walked (their sort's index, the ids
    checked by hash)."""
    if is_postgres():
        return ((Ticket.id + 0) if walk else Ticket.id) == pw.fn.ANY(ids)
    column = pw.NodeList((pw.SQL("+"), Ticket.id), glue="") if walk else Ticket.id
    return column.in_(pw.SQL(f"(SELECT value FROM json_each({database.param}))", [ids]))


def walks(user: User, found: int) -> bool:
    """Whether the table should walk this user's tickets rather than look up the ones found (see among)."""
    return not user.is_staff and found >= WALK_FROM


def ids_value(ids: list[int]):
    """The value `among` wants: a list for PostgreSQL (an array), JSON text for SQLite's json_each."""
    # The ids come from the database (integers): str() each, in C (a generator with int() took 0.1 ms for
    # 577 ids, as much as finding them).
    return list(ids) if is_postgres() else "[" + ",".join(map(str, ids)) + "]"


@contextmanager
def _index_read(search: Search):
    """PostgreSQL: a phrase's first matches through its pairs' GIN index, not by reading the table until
    enough rows match. For a common pair ("upper arch": one ticket in four) and a LIMIT the planner reads
    the table from the start, as it may for a word; but a row's pairs are kept out of line (index.
    TICKET_STORAGE) and the planner does not count fetching them: 4,000 rows read for 1,002 matches took
    63-80 ms, the index 34-42 ms (load 7-9). Only for this statement (SET LOCAL, in a transaction of its
    own or a savepoint: undone on error, set back after)."""
    if not search.pg_tsqueries()[1]:
        yield
        return
    with database.atomic():
        database.execute_sql("SET LOCAL enable_seqscan = off")
        yield
        database.execute_sql("SET LOCAL enable_seqscan = on")


# SQLite, a clinician's search without a typed number: the matches of each status (one list each in the index,
# index.own_terms), how many and which ("3:457,646,956"), up to FEW_MATCHES + 1 of each.
_OWN_LISTS = "SELECT " + ", ".join(
    "(SELECT count(*) || ':' || ifnull(group_concat(rowid), '') FROM (SELECT rowid FROM search_ticket "
    f"WHERE search_ticket MATCH ? LIMIT {FEW_MATCHES + 1}))" for _ in Status)
# How many of the rows are of each status, in Status's order (written once, not per request).
_PER_STATUS = ", ".join(f"SUM(CASE WHEN t.status = {status.value} THEN 1 ELSE 0 END)" for status in Status)


def table_search(user: User, search: Search) -> TableSearch:
    if not user.is_staff and search.number is None and not is_postgres():
        return _own_lists(user, search)
    matches, params = _matches(user, search)
    # The statement is reusable only without a typed number (written into it).
    reusable = (matches, params) if search.number is None else None
    # How many the index finds, counted inside the database and only up to COUNT_MAX + 1 (a common word's
    # ids are not fetched just to learn that there are many: 0.3 ms where fetching 2,000 took 1-3 ms).
    # Few matches (the usual case, and every "nothing found"): the tickets found, looked up by primary key,
    # with their status for the counts, in one statement of plain SQL (built with peewee, the counts and the
    # page cost a clinician more than running them). A planner handed the subquery for the page walks the
    # sort index checking each ticket, all of them when none match: the page gets the ids (TableSearch.ids).
    few = COUNT_MAX + (search.number is not None)
    rows, spacing = None, 0.0
    if user.is_staff and is_postgres():
        # The ids fetched rather than counted: a second statement would check every candidate's positions
        # again (a phrase: "wrong plan", 8,383 tickets holding both words, none the phrase).
        with _index_read(search):
            ids = [i for (i,) in database.execute_sql(f"{matches} LIMIT {COUNT_MAX + 2}", params).fetchall()]
        if len(ids) <= few:
            rows = database.execute_sql("SELECT t.id, t.status FROM ticket t WHERE t.id = ANY(%s)",
                                        [ids]).fetchall()
    elif user.is_staff:
        # Whether there are more than `few`: the match after the newest `few`, if any (0.07 ms for "tray" at
        # 100,000 tickets, where counting up to 1,002 took 0.085); and how many ids back from the newest
        # ticket it lies, which tells how far apart the newest matches are (TableSearch.spacing: the
        # table's walk, newest first by default, wants that; the oldest are closer, having more replies).
        beyond = database.execute_sql(
            f"SELECT (SELECT max(id) FROM ticket) - rowid FROM ({matches}) ORDER BY rowid DESC LIMIT 1 "
            f"OFFSET {few}" if reusable else f"SELECT 0 FROM ({matches}) LIMIT 1 OFFSET {few}", params).fetchone()
        if beyond is None:
            rows = database.execute_sql(f"SELECT t.id, t.status FROM ticket t WHERE t.id IN ({matches})",
                                        params).fetchall()
        else:
            spacing = beyond[0] / (few + 1)
    else:
        # The index gives a clinician's own tickets only: their count is that of these rows, taken at once
        # (not counted first), exact up to FEW_MATCHES (one more: a typed number not theirs). One statement:
        # a second one for more than COUNT_MAX read the index again (PostgreSQL, "sca" typed: every term it
        # begins, portal-wide, 25-50 ms a statement). One row: how many, the ids as the value `among` takes
        # (JSON text or an array, made by the database) and the count of each status; 577 rows fetched into
        # Python, counted and written out as JSON took 0.15 ms more.
        found, ids, *by_status = database.execute_sql(
            f"SELECT COUNT(*), {'array_agg(t.id)' if is_postgres() else 'json_group_array(t.id)'}, {_PER_STATUS} "
            f"FROM ticket t WHERE t.id IN ({matches} LIMIT {FEW_MATCHES + 2}) AND t.requester_id = {int(user.id)}",
            params).fetchone()
        if found > FEW_MATCHES:
            return TableSearch(many(matches, params), None, FEW_MATCHES, reusable)
        counts = {status.value: n for status, n in zip(Status, by_status, strict=True) if n}
        return TableSearch(None, counts, ids=ids if found else ids_value([]), size=found)
    if rows is not None:
        # Counted and listed by C loops (itemgetter, Counter): a Python loop over 577 rows took 0.1 ms.
        ids = list(map(itemgetter(0), rows))
        return TableSearch(None, dict(Counter(map(itemgetter(1), rows))), ids=ids_value(ids), size=len(ids))
    return TableSearch(many(matches, params), None, COUNT_MAX, reusable, spacing=spacing)


def _own_lists(user: User, search: Search) -> TableSearch:
    """A clinician's table search on SQLite from the index alone: each status's matches are a list of their
    own (index.own_terms), so their lengths are the filter counts and together they are the tickets found.
    Through the ticket table, a status looked up for each of 577 tickets found took 0.2-0.3 ms of the
    statement's 0.34; the lists take 0.08 (`scan*`, 100,000 tickets)."""
    lists = database.execute_sql(_OWN_LISTS, [search.fts5_own(user.id, [status]) for status in Status]).fetchone()
    counts, found = {}, []
    for status, cell in zip(Status, lists, strict=True):
        size, _, ids = cell.partition(":")
        if size != "0":
            counts[status.value] = int(size)
            found.append(ids)
    size = sum(counts.values())
    if size > FEW_MATCHES:
        matches = _matches(user, search)
        return TableSearch(many(*matches), None, FEW_MATCHES, matches)
    return TableSearch(None, counts, ids="[" + ",".join(found) + "]", size=size)


def ranked_tickets(user: User, search: Search, limit: int, offset: int = 0) -> tuple[list[int], int]:
    """Ids of the tickets found, best first (the ticket with the typed number, then by rank: title
    matches count ten times a body match; ties newest first), and how many there are in all.

    Only the newest RANK_MAX matches are ranked; any older ones follow them, newest first. Ranking reads
    every candidate's entry: all 87,000 matches of a common word at 200,000 tickets took 34-45 ms of
    CPU (SQLite bm25) where the newest 1,000 take 2-6 ms, and a word that common is answered best by
    recent tickets anyway."""
    if not search:
        return [], 0
    # Staff are counted in the index alone; only a clinician's count goes through the ticket table (the
    # condition fetches up to 2,001 matching ids: 19 ms of a PostgreSQL phrase search, for nothing).
    scored = None  # PostgreSQL: the newest RANK_MAX matches with their rank (see _pg_newest)
    if is_postgres() and search.groups:
        # One pass gives the candidates, their rank and the count: with fewer than the cap it read every
        # match, with more there are more than COUNT_MAX. Staff: slice by slice. A clinician: in one
        # statement (their matches are at most their own tickets, a few thousand; each slice read a word
        # being typed's portal-wide entries again: the index expands a prefix before it can skip, 25 ms a
        # slice for "sca"). Their count is of the candidates the ticket table says are theirs.
        scored, complete = _pg_newest(user, search, max(COUNT_MAX, RANK_MAX) + 1, sliced=user.is_staff)
        if not user.is_staff:
            scored = _theirs(user, scored)
        total = _count(user, search, None, [i for i, _ in scored]) if complete else COUNT_MAX + 1
        scored = scored[:RANK_MAX]
    else:
        total = _count(user, search, None if user.is_staff and search.groups else ticket_filter(user, search))
    if not total:
        return [], 0
    first = []
    if search.number is not None and Ticket.get_visible(search.number, user) is not None:
        first = [search.number]
    if not search.groups:
        return first[offset:offset + limit], total
    (newest, newest_params), (rank, rank_params) = _ranking_sql(user, search)
    skip, wanted = max(offset - len(first), 0), int(limit) + len(first)
    rows = []
    if skip < RANK_MAX:
        if is_postgres():
            # The candidates in their rank, ties newest first (the order of _ranking_sql).
            ranked = sorted(scored, key=lambda row: (-row[1], -row[0]))
            rows += [(i,) for i, _ in ranked[skip:skip + min(wanted, RANK_MAX - skip)]]
        else:
            # The candidates (the newest RANK_MAX matches) in their rank.
            rows += database.execute_sql(
                f"{rank} LIMIT {min(wanted, RANK_MAX - skip)} OFFSET {skip}", rank_params).fetchall()
    if skip + wanted > RANK_MAX:
        # Past them: the older matches, newest first (the same order the candidates were taken in).
        past = max(skip, RANK_MAX)
        rows += database.execute_sql(
            f"{newest} LIMIT {skip + wanted - past} OFFSET {past}", newest_params).fetchall()
    found = [i for (i,) in rows if i not in first]
    if not user.is_staff and found:
        # The index gave their own tickets (their requester term); the ticket table has the last word.
        mine = {i for (i,) in Ticket.select(Ticket.id).where(Ticket.id.in_(found), Ticket.requester == user.id)
                .tuples()}
        found = [i for i in found if i in mine]
    ids = (first + found) if offset == 0 else found
    return ids[:limit], total


def _ranking_sql(user: User, search: Search) -> tuple[tuple[str, list], tuple[str, list]]:
    """The matches newest first, and the newest RANK_MAX of them by rank (each SQL with its parameters).
    The index alone answers (a clinician's own tickets through their requester term). For clinicians
    internal notes weigh nothing, not even in the order; the requester term weighs nothing for anyone.
    PostgreSQL: no ranking SQL (empty); ranked_tickets takes the candidates with their rank (ts_rank,
    ties newest first) from _pg_newest, which finds them."""
    if is_postgres():
        condition, params = _pg_match(user, search)
        newest = f"SELECT s.ticket_id FROM search_ticket s WHERE {condition} ORDER BY s.ticket_id DESC"
        return (newest, params), ("", [])
    weights = "10.0, 1.0, 1.0, 0.0" if user.is_staff else "10.0, 1.0, 0.0, 0.0"
    source = "search_ticket WHERE search_ticket MATCH ?"
    newest = f"SELECT rowid FROM {source} ORDER BY rowid DESC"
    rank = (f"SELECT id FROM (SELECT rowid AS id, bm25(search_ticket, {weights}) AS r FROM {source} "
            f"ORDER BY rowid DESC LIMIT {RANK_MAX}) ORDER BY r, id DESC")
    params = [search.fts5(user.is_staff, _owner(user))]
    return (newest, params), (rank, params)


# The ranges of the newest ids the newest matches are looked for in on PostgreSQL, one after the other, in
# multiples of RANK_MAX below the newest ticket (see _pg_newest): the newest 5,000 ids (enough for a word in
# one ticket of five, "scan"), then down to 25,000 (one in 25, "upper arch"), then the rest.
NEWEST_WINDOWS = (5, 25)


def _pg_newest(user: User, search: Search, limit: int, sliced: bool = True) -> tuple[list[tuple[int, float]], bool]:
    """The newest `limit` matches on PostgreSQL, newest first, each with its rank (ts_rank, as
    _ranking_sql's), and whether that is every match (fewer than limit were found).

    "ORDER BY ticket_id DESC LIMIT 1000" over the GIN index reads every match's row first (a bitmap scan
    visits the table in its own order; a phrase also checks each row's positions): 11,043 rows for "upper
    arch" at 200,000 tickets, 43 ms of a 50 ms statement. The same query limited to the newest ids (a range
    of the primary key, which PostgreSQL ANDs with the GIN index's bitmap) reads only the rows in that
    range; older ranges are read only while fewer than `limit` matches were found. The slices are
    disjoint and together cover every id, so the result is exactly the newest matches. Ranking them in the same
    pass spares reading their rows again. "ticket_id + 0" keeps the planner off walking the primary key
    backwards and checking every row (it expects to stop early; "wrong plan", 8,383 tickets holding both
    words and none the phrase: 301 ms instead of 78 ms)."""
    condition, params = _pg_match(user, search)
    column = "staff_doc" if user.is_staff else "public_doc"
    slices = [""]
    if sliced:
        newest = database.execute_sql("SELECT MAX(ticket_id) FROM search_ticket").fetchone()[0] or 0
        bounds = [int(newest - RANK_MAX * window) for window in NEWEST_WINDOWS]
        bounds = [bound for bound in bounds if bound > 0]
        slices = [f" AND s.ticket_id > {bound}" + (f" AND s.ticket_id <= {above}" if above else "")
                  for above, bound in zip([None, *bounds], bounds, strict=False)]
        slices.append(f" AND s.ticket_id <= {bounds[-1]}" if bounds else "")
    found: list[tuple[int, float]] = []
    for ids in slices:
        # Ranked outside the limited subquery: only the rows kept (in a slice of a word in every tenth
        # ticket, ranking every match cost more than finding it).
        found += database.execute_sql(
            f"SELECT m.ticket_id, ts_rank(m.doc, to_tsquery('simple', %s)) FROM ("
            f"SELECT s.ticket_id, s.{column} AS doc FROM search_ticket s WHERE {condition}{ids} "
            f"ORDER BY s.ticket_id + 0 DESC LIMIT {limit - len(found)}) m ORDER BY m.ticket_id DESC",
            [search.tsquery(), *params]).fetchall()
        if len(found) >= limit:
            return found, False
    return found, True


def _theirs(user: User, scored: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """The candidates that are this clinician's tickets: the index gave theirs (their requester term), the
    ticket table has the last word."""
    if not scored:
        return scored
    mine = {i for (i,) in database.execute_sql("SELECT id FROM ticket WHERE id = ANY(%s) AND requester_id = %s",
                                                [[i for i, _ in scored], user.id]).fetchall()}
    return [row for row in scored if row[0] in mine]


def _count(user: User, search: Search, condition, ids: list[int] | None = None) -> int:
    """How many tickets the search finds for this user, counted up to COUNT_MAX + 1 (more shows as
    "1,000+"): counting all 43,791 matches of "scan" at 200,000 tickets took 138-163 ms on PostgreSQL.
    Staff: counted in the index alone (they see every ticket), plus the numbered ticket if the words
    miss it; ids: every one of the index's matches this user may see, when they were fetched and fewer
    than the cap (PostgreSQL)."""
    cap = COUNT_MAX + 1
    if ids is not None:
        total = len(ids)
        if search.number is not None and total < cap and search.number not in ids and (
                Ticket.visible_to(user).where(Ticket.id == search.number).exists()):
            total += 1
        return min(total, cap)
    if not (user.is_staff and search.groups):
        return Ticket.visible_to(user).where(condition).limit(cap).count()
    if is_postgres():
        condition, match = _pg_match(user, search)
        found, key = f"FROM search_ticket s WHERE {condition}", "s.ticket_id"
    else:
        found, key, match = "FROM search_ticket WHERE search_ticket MATCH ?", "rowid", [search.fts5(True)]
    total = database.execute_sql(f"SELECT COUNT(*) FROM (SELECT 1 {found} LIMIT {cap}) x", match).fetchone()[0]
    if search.number is not None and total < cap and Ticket.select().where(Ticket.id == search.number).exists():
        total += 1 - database.execute_sql(f"SELECT COUNT(*) {found} AND {key} = {database.param}",
                                          [*match, search.number]).fetchone()[0]
    return min(total, cap)


def ranked_cases(user: User, search: Search, limit: int) -> list[Case]:
    """The cases this user may see that the search finds, best first."""
    if not search.groups:
        return []
    owner = "" if user.is_staff else f" AND c.clinician_id = {database.param}"
    owner_params = [] if user.is_staff else [user.id]
    if is_postgres():
        sql = (f"SELECT c.id FROM search_case s JOIN \"case\" c ON c.id = s.case_id, to_tsquery('simple', %s) q "
               f"WHERE s.doc @@ q{owner} ORDER BY ts_rank(s.doc, q) DESC, c.id DESC LIMIT {int(limit)}")
        params = [search.tsquery(), *owner_params]
    else:
        sql = (f'SELECT c.id FROM search_case JOIN "case" c ON c.id = search_case.rowid WHERE search_case MATCH ?'
               f"{owner} ORDER BY bm25(search_case), c.id DESC LIMIT {int(limit)}")
        params = [search.fts5_expression(), *owner_params]
    ids = [i for (i,) in database.execute_sql(sql, params).fetchall()]
    cases = {c.id: c for c in Case.select().where(Case.id.in_(ids))} if ids else {}
    return [cases[i] for i in ids if i in cases]
