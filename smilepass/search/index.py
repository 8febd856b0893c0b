"""The search index: one entry per ticket and one per case, holding index terms (text.terms), never
the original text (snippets are cut from the rows themselves, see snippet).

SQLite: FTS5 tables (rowid = the ticket's or case's id) with columns title, body and internal: a
clinician's query is limited to title and body, so internal notes can match for staff only.
PostgreSQL: tables with tsvector columns and GIN indexes; `public_doc` (title weight A, body B) is
what clinicians search, `staff_doc` adds internal notes (C); `public_pairs` and `staff_pairs` hold the
same texts' adjacent terms, for phrases (pair_term, migration 0025).

The ticket's requester is a term of its entry too (owner_term; SQLite: the column `owner`, PostgreSQL: a
lexeme in both documents), so a clinician's search finds their own tickets in the index alone: a common
word's matches across the portal are never read and joined back to the ticket table (migration 0023).
Typed text cannot reach it: SQLite's queries name the text columns, and PostgreSQL's lexeme begins
with "=", which no typed term holds (query.WORD: letters and digits only). SQLite's column `mine` holds
the title's and public text's terms once more, each as the requester's own in the ticket's status
(own_terms, migrations 0026 and 0028): the clinician's table reads the lists of their own terms alone, not
those of the word across the portal, and counts each status's matches there.

Every write that changes searchable text calls reindex_tickets / reindex_cases inside its own
transaction, so the index is never behind what was committed. Plain SQL over the tables, not the
models: migration 0016 builds the index with the same functions, against the schema of that day."""
import functools
from contextlib import contextmanager

import peewee

from ..db import database
from .text import terms

TICKET_TABLE = "search_ticket"
CASE_TABLE = "search_case"
BATCH = 500

TICKET_OPTIONS = "prefix = '2 3 4', tokenize = 'unicode61 remove_diacritics 2'"
TICKET_TRIGGER = ("CREATE TRIGGER search_ticket_gone AFTER DELETE ON ticket BEGIN "
                  "DELETE FROM search_ticket WHERE rowid = old.id; END")
# A ticket's own terms carry its status (own_terms): a status change writes them again in the same
# transaction, whichever statement makes it. Every term of `mine` begins with the old prefix, and only
# there does one follow a space (the column written with a space in front of it), so replacing " <old
# prefix>" rewrites exactly the prefixes: "7o1tray" -> "7o3tray", the lone marker "7o1" -> "7o3".
STATUS_TRIGGER = (
    "CREATE TRIGGER search_ticket_status AFTER UPDATE OF status ON ticket WHEN old.status IS NOT new.status "
    "BEGIN UPDATE search_ticket SET mine = substr(replace(' ' || mine, "
    "' ' || old.requester_id || 'o' || old.status, ' ' || new.requester_id || 'o' || new.status), 2) "
    "WHERE rowid = new.id; END")
SQLITE_DDL = [
    # prefix: FTS5 also indexes every term's first 2, 3 and 4 characters, so a word being typed is one
    # doclist instead of a merge of every term it begins (migration 0023).
    f"CREATE VIRTUAL TABLE search_ticket USING fts5(title, body, internal, owner, mine, {TICKET_OPTIONS})",
    "CREATE VIRTUAL TABLE search_case USING fts5(body, tokenize = 'unicode61 remove_diacritics 2')",
    # Tickets are not deleted today and cases only by erasure, which also removes them here: these make
    # sure of it.
    TICKET_TRIGGER,
    STATUS_TRIGGER,
    'CREATE TRIGGER search_case_gone AFTER DELETE ON "case" BEGIN '
    "DELETE FROM search_case WHERE rowid = old.id; END",
]
# The pair columns (see pair_term), as migration 0025 adds them to an existing table.
PAIR_COLUMNS = {"public_pairs": "public_pairs TSVECTOR NOT NULL DEFAULT ''",
                "staff_pairs": "staff_pairs TSVECTOR NOT NULL DEFAULT ''"}
TICKET_INDEXES = {
    "search_ticket_public": "CREATE INDEX search_ticket_public ON search_ticket USING GIN (public_doc)",
    "search_ticket_staff": "CREATE INDEX search_ticket_staff ON search_ticket USING GIN (staff_doc)",
    "search_ticket_public_pairs": "CREATE INDEX search_ticket_public_pairs ON search_ticket USING GIN (public_pairs)",
    "search_ticket_staff_pairs": "CREATE INDEX search_ticket_staff_pairs ON search_ticket USING GIN (staff_pairs)",
}
# Where PostgreSQL keeps the columns of a row too long for a page's share (2 kB; most with the pairs): the
# pairs out of line, uncompressed (EXTERNAL), and the documents in the row (MAIN). The index answers a
# pair exactly, so pairs are rarely read from the row, while every word's search reads documents there
# (rechecks, ranking). By default the pairs were compressed into the row: the same rows took 1.75 times the
# pages ("scan" for staff, 1,002 ids: 4.6 -> 11 ms); with the pairs alone EXTERNAL the documents would be
# compressed first (PostgreSQL compresses before it moves out), and decompressed whenever read.
TICKET_STORAGE = ("ALTER TABLE search_ticket ALTER COLUMN public_doc SET STORAGE MAIN, "
                  "ALTER COLUMN staff_doc SET STORAGE MAIN, ALTER COLUMN public_pairs SET STORAGE EXTERNAL, "
                  "ALTER COLUMN staff_pairs SET STORAGE EXTERNAL")
POSTGRES_DDL = [
    "CREATE TABLE search_ticket (ticket_id INTEGER PRIMARY KEY REFERENCES ticket (id) ON DELETE CASCADE, "
    f"public_doc TSVECTOR NOT NULL, staff_doc TSVECTOR NOT NULL, {', '.join(PAIR_COLUMNS.values())})",
    TICKET_STORAGE,
    *TICKET_INDEXES.values(),
    'CREATE TABLE search_case (case_id INTEGER PRIMARY KEY REFERENCES "case" (id) ON DELETE CASCADE, '
    "doc TSVECTOR NOT NULL)",
    "CREATE INDEX search_case_doc ON search_case USING GIN (doc)",
]
DROP = ["DROP TABLE IF EXISTS search_ticket", "DROP TABLE IF EXISTS search_case"]


def owner_term(user_id: int, postgres: bool) -> str:
    """The index term that stands for a ticket's requester."""
    return f"={int(user_id)}" if postgres else f"owner{int(user_id)}"


# SQLite: a clinician's search of their own tickets in the table reads the word ANDed with their requester
# term, i.e. the word's list of tickets across the portal ("scan" at 100,000 tickets: 23,621 entries read for
# a clinician's 577, 0.36 ms; "invoic*" 0.51 ms). The column `mine` holds the entry's public terms as the
# requester's own in the ticket's status: "7o" and the status's digit before each ("7o1tray"), one list per
# clinician, status and term (0.07-0.11 ms for the same). The table's count of each status's matches is
# then the length of one list, read from the index alone; through the ticket table, 577 lookups by id
# took 0.2-0.3 ms (migration 0028). The marker ends the id (ids are digits, the mark a letter) and one
# digit of status follows (Status has five), so no two requesters' or statuses' terms are alike, and only
# query.Search.fts5_own writes it into a query, always with the searching clinician's id. A prefix alone
# stands between title and body, so that no phrase runs from one into the other (as in the two columns).
OWN_MARK = "o"


def own_prefix(user_id: int, status: int) -> str:
    return f"{int(user_id)}{OWN_MARK}{int(status)}"


def own_terms(requester: int, status: int, title_terms: str, body_terms: str) -> str:
    """The title's and public text's terms (as the index holds them) as the requester's own, in this
    status."""
    prefix = own_prefix(requester, status)
    return " ".join([*(prefix + term for term in title_terms.split()), prefix,
                     *(prefix + term for term in body_terms.split())])


# PostgreSQL: every two adjacent terms of a ticket's text are a lexeme ("~upp~arch", no position) of its pair
# columns, public_pairs (title and public text, and the requester term: what a clinician's phrase is looked
# for in) and staff_pairs (internal notes too), each with a GIN index. The index then answers a phrase by
# its pairs: a two-word phrase exactly (no positions to check), a longer one among the few entries holding
# all its pairs. Without them a phrase's positions were checked in every entry holding its words: 48,992
# of 200,000 tickets for "upper arch" with a million replies, and all 5,808 of "wrong plan" (migration
# 0025). Columns of their own, not more lexemes in the documents: those doubled in size, most then went
# out of line (TOAST), and every word's search read 3.6 times the pages to rank them. Like the requester
# term, a pair begins with a character no typed term holds (query.WORD); only query.Search.pg_tsqueries
# writes them.
PAIR_MARK = "~"
# Positions stop at 16,383 in a tsvector (later words all share the last one), so PostgreSQL never found a
# phrase past it: pairs stop there too. And a tsvector holds at most 1 MB of lexemes: pairs of long made-up
# words stop at this many characters, so they can never make a reply too long to index.
POSITIONS_MAX = 16383
PAIRS_CHARS_MAX = 256 * 1024


def pair_term(first: str, second: str) -> str:
    """The lexeme of two adjacent terms (the second may be the start of a word, for a prefix query)."""
    return f"{PAIR_MARK}{first}{PAIR_MARK}{second}"


def pair_terms(run: list[str], besides: frozenset = frozenset()) -> list[str]:
    """The distinct pair lexemes of a run of terms (as PostgreSQL numbers their positions), leaving out
    those in besides."""
    found, size = {}, 0
    for first, second in zip(run, run[1:POSITIONS_MAX], strict=False):
        pair = pair_term(first, second)
        if pair in found:
            continue
        size += len(pair)
        if size > PAIRS_CHARS_MAX:
            break
        found[pair] = None
    return [pair for pair in found if pair not in besides]


def _postgres(db) -> bool:
    return isinstance(db.obj if isinstance(db, peewee.DatabaseProxy) else db, peewee.PostgresqlDatabase)


def create(db=database) -> None:
    for statement in POSTGRES_DDL if _postgres(db) else SQLITE_DDL:
        db.execute_sql(statement)


def drop(db=database) -> None:
    if not _postgres(db):
        db.execute_sql("DROP TRIGGER IF EXISTS search_ticket_gone")
        db.execute_sql("DROP TRIGGER IF EXISTS search_ticket_status")
        db.execute_sql("DROP TRIGGER IF EXISTS search_case_gone")
    for statement in DROP:
        db.execute_sql(statement)


def _in(db, ids) -> str:
    return ", ".join([db.param] * len(ids))


def ticket_texts(db, ids: list[int]) -> dict[int, list[list[str]]]:
    """(title, public body, internal) texts of these tickets (and, fourth and fifth, the requester's id
    and the status)."""
    found = {}
    rows = db.execute_sql(
        "SELECT t.id, t.title, t.description, t.tried, c.case_number, d.tracking_number, t.requester_id, t.status "
        'FROM ticket t LEFT JOIN "case" c ON c.id = t.case_id LEFT JOIN case_details d ON d.ticket_id = t.id '
        f"WHERE t.id IN ({_in(db, ids)})", ids)
    for ticket_id, title, description, tried, case_number, tracking, requester, status in rows.fetchall():
        number = f"SP-{ticket_id:06d}"
        found[ticket_id] = [[title, number], [description, tried, case_number or "", tracking or ""], [],
                            requester, status]
    messages = db.execute_sql(
        f"SELECT ticket_id, body, internal FROM message WHERE ticket_id IN ({_in(db, ids)}) ORDER BY id", ids)
    for ticket_id, body, internal in messages.fetchall():
        found[ticket_id][2 if internal else 1].append(body)
    for table in ("scan", "attachment"):
        # A file sent with an internal note is as internal as the note.
        names = db.execute_sql(
            f"SELECT f.ticket_id, f.original_name, m.internal FROM {table} f "
            f"LEFT JOIN message m ON m.id = f.message_id WHERE f.ticket_id IN ({_in(db, ids)})", ids)
        for ticket_id, name, internal in names.fetchall():
            found[ticket_id][2 if internal else 1].append(name)
    return found


def case_texts(db, ids: list[int]) -> dict[int, list[str]]:
    """A case is found by its number, patient, clinic patient ID, tracking numbers and scan file names."""
    found = {}
    for case_id, *texts in db.execute_sql(
            f'SELECT id, case_number, patient_name, clinic_patient_id FROM "case" WHERE id IN ({_in(db, ids)})',
            ids).fetchall():
        found[case_id] = texts
    for case_id, tracking in db.execute_sql(
            f"SELECT case_id, tracking_number FROM shipment WHERE case_id IN ({_in(db, ids)})", ids).fetchall():
        found[case_id].append(tracking)
    for case_id, name in db.execute_sql(
            f"SELECT case_id, original_name FROM scan WHERE case_id IN ({_in(db, ids)})", ids).fetchall():
        found[case_id].append(name)
    return found


# The terms of one text, remembered for the texts that recur (canned replies, the demo's million replies:
# 200,000 tickets spent 20 s stemming the same few thousand texts). Joining each text's terms gives what
# the terms of the joined text would: no word runs across the space between two texts.
_text_terms = functools.lru_cache(maxsize=8192)(terms)


def _joined(texts: list[str]) -> str:
    return " ".join(found for found in map(_text_terms, filter(None, texts)) if found)


def reindex_tickets(ticket_ids, db=database) -> None:
    """Bring these tickets' entries up to date (a ticket that no longer exists loses its entry)."""
    ids = sorted({int(i) for i in ticket_ids if i is not None})
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        texts = ticket_texts(db, chunk)
        if _postgres(db):
            db.execute_sql(f"DELETE FROM search_ticket WHERE ticket_id IN ({_in(db, chunk)})", chunk)
            if texts:
                # One statement for the whole chunk: a statement per ticket made the index of 200,000 demo
                # tickets wait on 200,000 round trips.
                rows = [_postgres_row(ticket_id, *parts[:4]) for ticket_id, parts in texts.items()]
                # Positions run on from title to body to internal notes (|| shifts the right one's past
                # the left one's), as the pairs do; the pairs and the requester term have none.
                db.execute_sql(
                    "INSERT INTO search_ticket (ticket_id, public_doc, staff_doc, public_pairs, staff_pairs) "
                    "SELECT v.id, x.p, x.p || setweight(to_tsvector('simple', v.internal), 'C'), "
                    "array_to_tsvector(v.public_pairs || v.owner), array_to_tsvector(v.public_pairs || v.staff_pairs) "
                    "FROM (VALUES " + ", ".join(["(%s::integer, %s, %s, %s, %s, %s::text[], %s::text[])"] * len(rows))
                    + ") AS v (id, internal, title, body, owner, public_pairs, staff_pairs) CROSS JOIN LATERAL (SELECT "
                    "setweight(to_tsvector('simple', v.title), 'A') || setweight(to_tsvector('simple', v.body), 'B') "
                    "|| array_to_tsvector(ARRAY[v.owner]) AS p) x",
                    [value for row in rows for value in row])
        else:
            db.execute_sql(f"DELETE FROM search_ticket WHERE rowid IN ({_in(db, chunk)})", chunk)
            for ticket_id, (title, body, internal, requester, status) in texts.items():
                title_terms, body_terms = _joined(title), _joined(body)
                db.execute_sql(
                    "INSERT INTO search_ticket (rowid, title, body, internal, owner, mine) VALUES (?, ?, ?, ?, ?, ?)",
                    [ticket_id, title_terms, body_terms, _joined(internal), owner_term(requester, False),
                     own_terms(requester, status, title_terms, body_terms)])


def _postgres_row(ticket_id: int, title: list[str], body: list[str], internal: list[str], requester: int) -> list:
    """A ticket's values for PostgreSQL's INSERT: its terms, requester term and pairs: those of the title
    and public text (public_pairs, what a clinician's search reads), and those that involve internal notes
    (added in staff_pairs; the one across the boundary included, as staff_doc's positions have it)."""
    title_terms, body_terms, internal_terms = _joined(title), _joined(body), _joined(internal)
    public_run = f"{title_terms} {body_terms}".split()
    public_pairs = pair_terms(public_run)
    staff_pairs = pair_terms(public_run + internal_terms.split(), frozenset(public_pairs))
    return [ticket_id, internal_terms, title_terms, body_terms, owner_term(requester, True), public_pairs,
            staff_pairs]


def reindex_cases(case_ids, db=database, with_tickets: bool = True) -> None:
    """Bring these cases' entries up to date, and those of the tickets about them (which carry the
    case number)."""
    ids = sorted({int(i) for i in case_ids if i is not None})
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        texts = case_texts(db, chunk)
        key = "case_id" if _postgres(db) else "rowid"
        db.execute_sql(f"DELETE FROM search_case WHERE {key} IN ({_in(db, chunk)})", chunk)
        for case_id, parts in texts.items():
            if _postgres(db):
                db.execute_sql("INSERT INTO search_case (case_id, doc) VALUES (%s, to_tsvector('simple', %s))",
                               [case_id, _joined(parts)])
            else:
                db.execute_sql("INSERT INTO search_case (rowid, body) VALUES (?, ?)", [case_id, _joined(parts)])
        if with_tickets:
            tickets = db.execute_sql(f"SELECT id FROM ticket WHERE case_id IN ({_in(db, chunk)})", chunk).fetchall()
            reindex_tickets([t for (t,) in tickets], db)


def forget_cases(case_ids, db=database) -> None:
    ids = [int(i) for i in case_ids]
    if ids:
        key = "case_id" if _postgres(db) else "rowid"
        db.execute_sql(f"DELETE FROM search_case WHERE {key} IN ({_in(db, ids)})", ids)


@contextmanager
def _merged_at_the_end(db):
    """SQLite: FTS5 merges its segments while rows go in (automerge); a rebuild merges everything once at
    the end anyway (compact), so it goes without the merges on the way (40,000 demo tickets with 200,000
    replies: 5.4 -> 3.8 s), and the table's setting is put back afterwards."""
    if _postgres(db):
        yield
        return
    found = db.execute_sql("SELECT v FROM search_ticket_config WHERE k = 'automerge'").fetchone()
    db.execute_sql("INSERT INTO search_ticket (search_ticket, rank) VALUES ('automerge', 0)")
    yield
    db.execute_sql("INSERT INTO search_ticket (search_ticket, rank) VALUES ('automerge', ?)",
                   [found[0] if found else 4])  # 4: FTS5's default


def rebuild(db=database) -> None:
    """Index everything again (migration 0016, `flask demo`, or to repair)."""
    with _merged_at_the_end(db):
        _rebuild(db)
    compact(db)


def _rebuild(db) -> None:
    for table in ("ticket", '"case"'):
        db.execute_sql(f"DELETE FROM search_{table.strip(chr(34))}")
        for ids in _every_id(db, table):
            if table == "ticket":
                reindex_tickets(ids, db)
            else:
                reindex_cases(ids, db, with_tickets=False)


def _every_id(db, table: str):
    """Every id of the table, in batches, in order."""
    last = 0
    while True:
        ids = [i for (i,) in db.execute_sql(
            f"SELECT id FROM {table} WHERE id > {db.param} ORDER BY id LIMIT {BATCH * 4}", [last]).fetchall()]
        if not ids:
            return
        yield ids
        last = ids[-1]


def reindex_every_ticket(db=database) -> None:
    """Every ticket's entry again (a migration that changes what an entry holds, e.g. 0025's pairs)."""
    for ids in _every_id(db, "ticket"):
        reindex_tickets(ids, db)


def compact(db=database) -> None:
    """SQLite: merge the FTS5 index into one segment. FTS5 marks deleted entries with tombstones and keeps
    the old segments (with the deleted terms) until a merge; 'optimize' rewrites the whole index without
    them, so after an erasure (with secure_delete on, which zeroes the freed pages) the terms are gone
    from the file. PostgreSQL: nothing to do inside a transaction (see the erasure's VACUUM)."""
    if not _postgres(db):
        db.execute_sql("INSERT INTO search_ticket (search_ticket) VALUES ('optimize')")
        db.execute_sql("INSERT INTO search_case (search_case) VALUES ('optimize')")
