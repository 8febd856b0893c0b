"""Full-text search (smilepass/search): what is found, by whom, ranked how, and what hostile input
does. Runs on both databases (SMILEPASS_TEST_DATABASE_URL for PostgreSQL)."""
import datetime as dt
import io
import re

import pytest
from playhouse.migrations import Runner

from smilepass import db
from smilepass.models import Status, Ticket, User
from smilepass.search import index, text
from smilepass.search import query as search_query
from smilepass.search.snippet import highlight
from smilepass.support import listing

from .case_helpers import ADA, make_case
from .conftest import legacy_database, query
from .scanfiles import arch_stl

ROWS = re.compile(r'<td class="title-cell"><a href="/support/tickets/(\d+)">')
RESULTS = re.compile(r'<li><a href="/support/tickets/(\d+)">')
NOTE = "Clinic owes two invoices, overdrawn account flagged"
NOTE_WORD = "overdrawn"


def table_ids(browser, url: str, htmx: bool = True) -> list[int]:
    response = browser.get(url, htmx=htmx)
    assert response.status_code == 200, response.get_data(as_text=True)[-500:]
    return [int(i) for i in ROWS.findall(response.get_data(as_text=True))]


def found(browser, typed: str) -> list[int]:
    response = browser.get("/search", query_string={"q": typed})
    assert response.status_code == 200, response.get_data(as_text=True)[-500:]
    return [int(i) for i in RESULTS.findall(response.get_data(as_text=True))]


def reply(browser, ticket_id: int, body: str, internal: bool = False):
    data = {"body": body, **({"internal": "y"} if internal else {})}
    assert browser.post(f"/support/tickets/{ticket_id}/replies", data).status_code == 303


def test_words_replies_and_who_finds_them(clinician, other_clinician, support, new_ticket):
    mine = new_ticket(clinician, title="Aligner tray cracked", description="Cracked on insertion, tray 7.")
    theirs = new_ticket(other_clinician, title="Login trouble", description="Password reset mail never came.")
    reply(clinician, mine, "The replacement shipment arrived with a wobbly attachment template.")
    reply(support, mine, NOTE, internal=True)
    # The owner finds the reply's word, on the Support table and on /search; another clinician does not.
    assert table_ids(clinician, "/support/?q=wobbly") == [mine]
    assert found(clinician, "wobbly") == [mine]
    assert table_ids(other_clinician, "/support/?q=wobbly") == []
    assert found(other_clinician, "wobbly") == []
    assert found(other_clinician, "password") == [theirs] and found(clinician, "password") == []
    # Staff see everything, internal notes included.
    assert found(support, "wobbly") == [mine] and found(support, NOTE_WORD) == [mine]
    assert table_ids(support, f"/support/?q={NOTE_WORD}") == [mine]
    assert table_ids(support, f"/queue/?q={NOTE_WORD}", htmx=False) == [mine]


def test_internal_note_words_never_reach_a_clinician(clinician, support, new_ticket):
    ticket_id = new_ticket(clinician, title="Billing question", description="Invoice 12 looks wrong.")
    reply(support, ticket_id, NOTE, internal=True)
    for typed in (NOTE_WORD, "overdr", f'"{NOTE_WORD} account"', f"invoice {NOTE_WORD}"):
        page = clinician.get("/search", query_string={"q": typed}).get_data(as_text=True)
        assert RESULTS.findall(page) == [], typed
        # Nothing of the note shows (the words never typed: the page repeats what was).
        assert "flagged" not in page and "owes" not in page and "Nothing found for" in page
        table = clinician.get(f"/support/?q={typed}", htmx=True).get_data(as_text=True)
        assert ROWS.findall(table) == [] and "Nothing found for" in table
        # The filter counts are those of the tickets found: zero, not one.
        assert '<span class="count">1</span>' not in table
    # A word of both the request and the note: found, but the excerpt never shows the note.
    page = clinician.get("/search", query_string={"q": "invoice"}).get_data(as_text=True)
    assert RESULTS.findall(page) == [str(ticket_id)] and NOTE_WORD not in page and "Internal note" not in page
    staff_page = support.get("/search", query_string={"q": NOTE_WORD}).get_data(as_text=True)
    assert f"<mark>{NOTE_WORD}</mark>" in staff_page and "Internal note:" in staff_page


def test_ticket_numbers(clinician, new_ticket):
    ids = [new_ticket(clinician, title=f"Request {n}", description="Nothing special.") for n in range(3)]
    second = ids[1]
    for typed in (f"SP-{second:06d}", str(second), f"sp{second}", f"#{second}"):
        assert found(clinician, typed)[:1] == [second], typed
        assert second in table_ids(clinician, f"/support/?q={typed}"), typed


def test_stemming_diacritics_prefix_and_phrase(clinician, new_ticket):
    bruch = new_ticket(clinician, title="Bruch der Schiene", description="Die Schiene hat einen Bruch am Rand.")
    cafe = new_ticket(clinician, title="Attachments", description="Die Zähne überprüfen, Café-Termin am Montag.")
    trays = new_ticket(clinician, title="Trays fractured", description="Several fractures along the upper trays.")
    assert found(clinician, "Brüche") == [bruch]
    assert found(clinician, "bruche") == [bruch]
    assert found(clinician, "zahne") == [cafe] and found(clinician, "Überprüfen") == [cafe]
    assert found(clinician, "fracture") == [trays] and found(clinician, "tray") == [trays]
    # As you type: the last word is a prefix; a finished one (followed by a space) is not.
    assert found(clinician, "schie") == [bruch]
    assert found(clinician, "schie ") == []
    # Phrases in quotes keep their order; loose words need not.
    assert found(clinician, '"upper trays"') == [trays]
    assert found(clinician, '"trays upper"') == []
    assert found(clinician, "trays upper") == [trays]


def pair(first: str, second: str) -> str:
    """The pair lexeme of two words as typed."""
    return index.pair_term(text.terms(first), text.terms(second))


def pair_lexemes(ticket_id: int) -> tuple[set[str], set[str]]:
    """PostgreSQL: the pair lexemes (index.pair_term) a clinician's and staff's phrases are looked for in."""
    pairs = "ARRAY(SELECT lexeme FROM unnest({}) WHERE lexeme LIKE '~%%')"
    sql = (f"SELECT {pairs.format('public_pairs')}, {pairs.format('staff_pairs')} FROM search_ticket "
           "WHERE ticket_id = %s")
    public, staff = query(lambda: db.database.execute_sql(sql, [ticket_id]).fetchone())
    return set(public), set(staff)


def test_phrases_through_pairs_of_adjacent_words(clinician, support, new_ticket):
    """PostgreSQL finds a phrase through lexemes of adjacent terms in its documents (index.pair_term): a
    two-word phrase by its pair alone, a longer one by its pairs and then its positions, a phrase being
    typed by a pair's prefix. SQLite answers the same from FTS5's positions."""
    upper = new_ticket(clinician, title="Fit problem", description="The upper arch tray rocks on tooth 16.")
    apart = new_ticket(clinician, title="Two trays", description="Upper arch loose; the lower arch tray cracked.")
    wrong_way = new_ticket(clinician, title="Arch upper", description="Words the wrong way round.")
    reply(clinician, upper, "Case file NX-40915 attached.")
    assert sorted(found(clinician, '"upper arch"')) == [upper, apart]
    assert found(clinician, '"arch upper"') == [wrong_way]
    assert found(clinician, '"upper arch tray"') == [upper]
    # Every pair of "upper arch tray" is in `apart`, not the phrase: its positions decide.
    assert sorted(found(clinician, '"arch tray"')) == [upper, apart]
    assert table_ids(support, '/support/?q="upper arch tray"') == [upper]
    # A reply's words, and a number being typed (the pair's second word as a prefix).
    assert found(clinician, "NX-409") == [upper] and found(clinician, "NX-41") == []
    assert found(support, '"file nx 40915"') == [upper]
    if db.is_postgres():
        public, staff = pair_lexemes(upper)
        assert {pair("upper", "arch"), pair("arch", "tray"), pair("nx", "40915")} <= public and public <= staff
        # The pairs run on from title (with the ticket's number) to description to replies, as positions do.
        assert {pair("problem", "sp"), pair(f"{upper:06d}", "the"), pair("16", "case")} <= public


def test_pairs_from_internal_notes_never_reach_a_clinician(clinician, support, new_ticket):
    """A clinician's document holds the pairs of public text only: not those of an internal note, nor the
    one across from the public text's last word to the note's first (staff's document runs on into it)."""
    ticket_id = new_ticket(clinician, title="Billing question", description="Invoice 12 looks wrong.")
    reply(support, ticket_id, NOTE, internal=True)
    for typed in ('"overdrawn account"', '"account flagged"', '"wrong clinic"', "wrong-clin"):
        assert found(clinician, typed) == [] and table_ids(clinician, f"/support/?q={typed}") == [], typed
    assert found(support, '"overdrawn account"') == [ticket_id]
    assert found(clinician, '"looks wrong"') == [ticket_id]
    if db.is_postgres():
        public, staff = pair_lexemes(ticket_id)
        assert pair("looks", "wrong") in public
        # No pair with a word only the note holds ("invoices" is also in the description).
        note_only = set(text.terms(NOTE).split()) - set(text.terms("Billing question Invoice 12 looks wrong").split())
        assert not {found for found in public if note_only & set(found.split(index.PAIR_MARK))}
        assert {pair("overdrawn", "account"), pair("wrong", "clinic"), pair("clinic", "owes")} <= staff


def test_migration_0025_gives_existing_entries_their_pairs(app, clinician, support, new_ticket):
    """Entries written before 0025 have no pair columns (PostgreSQL); the migration adds them and writes
    every entry again, so existing tickets are found by phrase. On SQLite it has nothing to do."""
    ticket_id = new_ticket(clinician, title="Upper arch", description="The tray cracked along the upper arch.")
    runner = Runner(db.database.obj, str(db.MIGRATIONS_DIR))
    query(lambda: runner.down("0025_search_pairs"))  # 0025 and the ones after it
    assert [m.name for m in query(runner.status) if not m.applied][0] == "0025_search_pairs"
    if db.is_postgres():
        columns = query(lambda: db.database.get_columns("search_ticket"))
        assert [c.name for c in columns] == ["ticket_id", "public_doc", "staff_doc"]
    query(runner.up)
    assert found(support, '"upper arch"') == [ticket_id] and found(clinician, '"tray cracked"') == [ticket_id]
    assert found(clinician, '"arch tray"') == []
    if db.is_postgres():
        public, staff = pair_lexemes(ticket_id)
        assert {pair("upper", "arch"), pair("tray", "cracked")} <= public and public <= staff


def test_title_matches_rank_first(clinician, new_ticket):
    body = new_ticket(clinician, title="Question", description="The retainer is loose, retainer again.")
    title = new_ticket(clinician, title="Retainer loose", description="Please look.")
    older_title = new_ticket(clinician, title="Old retainer", description="See photos.")
    assert found(clinician, "retainer")[0] in (title, older_title)
    assert found(clinician, "retainer")[-1] == body


@pytest.mark.parametrize("role", ["clinician", "support"])
def test_only_the_newest_matches_are_ranked_and_older_ones_follow_newest_first(request, clinician, new_ticket,
                                                                                monkeypatch, role):
    """A common word ranks its newest RANK_MAX matches (reading every match's entry cost 34-45 ms at
    200,000 tickets); older matches follow them, newest first, and every page of /search agrees."""
    monkeypatch.setattr(search_query, "RANK_MAX", 2)
    oldest_title = new_ticket(clinician, title="Retainer cracked", description="Photo attached.")
    older_body = new_ticket(clinician, title="Question", description="The retainer is loose.")
    body = new_ticket(clinician, title="Another question", description="Retainer again, retainer.")
    title = new_ticket(clinician, title="Retainer lost", description="Please send one.")
    viewer = request.getfixturevalue(role)
    # Ranked: of the newest two, the title match first; then the older two, newest first (the oldest
    # one's title match does not lift it: it is not a candidate).
    assert found(viewer, "retainer") == [title, body, older_body, oldest_title]
    searched = search_query.parse("retainer")
    email = {"clinician": "dr.ada@clinic.test", "support": "sam@smilepass.test"}[role]
    from_user = query(lambda: User.get(User.email == email))
    pages = [query(lambda o=o: search_query.ranked_tickets(from_user, searched, 1, o)) for o in range(5)]
    assert pages == [([title], 4), ([body], 4), ([older_body], 4), ([oldest_title], 4), ([], 4)]
    straddling = query(lambda: search_query.ranked_tickets(from_user, searched, 3, 1))
    assert straddling == ([body, older_body, oldest_title], 4)
    # Without the cap, the oldest title match ranks among the title matches.
    monkeypatch.setattr(search_query, "RANK_MAX", 1000)
    assert found(viewer, "retainer")[:2] in ([title, oldest_title], [oldest_title, title])


@pytest.mark.parametrize("role", ["clinician", "support"])
def test_the_newest_matches_are_found_slice_by_slice(request, clinician, new_ticket, monkeypatch, role):
    """PostgreSQL looks for the newest RANK_MAX matches in the newest ids first, then older ranges
    (query._pg_newest: reading every match of a phrase cost 43 ms of a 50 ms statement). Here the
    ranges hold 2, then 4 ids: the newest slice has one match, the next none, the rest the others, and
    a phrase's words in the wrong order are no match. The result is still exactly the newest matches in
    their rank, with the right count, on both databases."""
    monkeypatch.setattr(search_query, "RANK_MAX", 2)
    monkeypatch.setattr(search_query, "NEWEST_WINDOWS", (1, 3))
    older = new_ticket(clinician, title="Upper arch loose", description="Photo attached.")
    old = new_ticket(clinician, title="Question", description="The upper arch is loose.")
    new_ticket(clinician, title="Arch upper", description="Words the wrong way round.")
    for n in range(3):
        new_ticket(clinician, title=f"Unrelated {n}", description="Nothing here.")
    newest = new_ticket(clinician, title="Other", description="Upper arch again.")
    new_ticket(clinician, title="Unrelated 3", description="Nothing here.")
    viewer = request.getfixturevalue(role)
    email = {"clinician": "dr.ada@clinic.test", "support": "sam@smilepass.test"}[role]
    from_user = query(lambda: User.get(User.email == email))
    phrase = search_query.parse('"upper arch"')
    if db.is_postgres():
        # The slices one by one: ids above newest-2, then above newest-6, then the rest.
        scored, complete = query(lambda: search_query._pg_newest(from_user, phrase, 2))
        assert [i for i, _ in scored] == [newest, old] and not complete
        scored, complete = query(lambda: search_query._pg_newest(from_user, phrase, 5))
        assert [i for i, _ in scored] == [newest, old, older] and complete
    # The newest two ranked (neither a title match: newest first), then the oldest; three in all.
    assert query(lambda: search_query.ranked_tickets(from_user, phrase, 5)) == ([newest, old, older], 3)
    assert found(viewer, '"upper arch"') == [newest, old, older]


@pytest.mark.parametrize("role", ["clinician", "support"])
def test_search_counts_up_to_the_cap(request, clinician, other_clinician, new_ticket, monkeypatch, role):
    """/search counts its tickets up to COUNT_MAX ("1,000+" above: counting every match of a common word
    took 138-163 ms on PostgreSQL); a clinician's count is of their own tickets only."""
    monkeypatch.setattr(search_query, "COUNT_MAX", 2)
    viewer = request.getfixturevalue(role)
    mine = [new_ticket(clinician, title=f"Retainer {n}", description="Loose.") for n in range(2)]
    new_ticket(other_clinician, title="Retainer too", description="Cracked.")

    def heading(typed):
        page = viewer.get("/search", query_string={"q": typed}).get_data(as_text=True)
        return re.search(r'id="ticket-results">[^<]*<span class="count">([^<]*)<', page).group(1)

    assert heading("retainer") == ("2" if role == "clinician" else "2+")
    # The typed number's ticket counts once, whether the words find it too or not.
    assert heading(f"SP-{mine[0]:06d}") == "1"
    new_ticket(clinician, title="Retainer again", description="Lost.")
    assert heading("retainer") == "2+"
    assert len(found(viewer, "retainer")) == (3 if role == "clinician" else 4)


def test_a_word_being_typed_that_its_stem_begins_is_one_prefix_query():
    """"tray" as typed: its stem begins with it, so every match of the stem is a match of the prefix and
    the query is the prefix alone (both, merged, cost 2.4 ms a page where the prefix took 1.4 ms).
    "trays": its stem "tray" does not begin with "trays", so both stay."""
    tray = search_query.parse("tray")
    assert tray.fts5_expression() == '("tray"*)' and tray.tsquery() == "(tray:*)"
    trays = search_query.parse("trays")
    assert trays.fts5_expression() == '(("tray" OR "trays"*))' and trays.tsquery() == "((tray) | (trays:*))"
    assert search_query.parse("tray ").fts5_expression() == '("tray")'


@pytest.mark.parametrize("walk_from", [1, 1000])
def test_a_clinicians_table_search_walks_their_tickets_or_looks_them_up(clinician, other_clinician, new_ticket,
                                                                       monkeypatch, walk_from):
    """With few matches the table gets their ids as one value (search.query.among): a clinician with many
    of them walks their own tickets in the sort's order (walk_from 1), otherwise each is looked up. Either
    way: their own matches only, in the table's sort and status filter, counted per status."""
    monkeypatch.setattr(search_query, "WALK_FROM", walk_from)
    first = new_ticket(clinician, title="Retainer cracked", description="Photo attached.")
    second = new_ticket(clinician, title="A retainer question", description="Loose.")
    new_ticket(clinician, title="Unrelated", description="Nothing here.")
    third = new_ticket(clinician, title="Lost retainer", description="Please send one.")
    theirs = new_ticket(other_clinician, title="Retainer too", description="Cracked.")
    assert table_ids(clinician, "/support/?q=retainer&sort=-date") == [third, second, first]
    assert table_ids(clinician, "/support/?q=retainer&sort=title") == [second, third, first]
    assert table_ids(clinician, "/support/?q=retainer&sort=-date&status=open") == [third, second, first]
    assert table_ids(clinician, "/support/?q=retainer&sort=-date&status=resolved") == []
    assert table_ids(clinician, "/support/?q=zzyzx") == []
    assert table_ids(other_clinician, "/support/?q=retainer") == [theirs]
    page = clinician.get("/support/?q=retainer", htmx=True).get_data(as_text=True)
    assert re.search(r'All\s*<span class="count">3</span>', page), page[:3000]


@pytest.mark.parametrize("ordered", [True, False], ids=["filed-in-order", "dates-out-of-order"])
def test_a_common_words_table_for_staff_walks_the_sort_in_stretches(app, clinician, support, new_ticket, monkeypatch,
                                                                    ordered):
    """More than COUNT_MAX matches (a common word), staff, SQLite: the table walks the sort's index and reads
    the index's matches within each stretch of ids walked (support.listing._walked_page) instead of
    collecting every match first. Every sort, status filter and page gives the tickets the subquery gives
    (WALK_MAX 0: no walk), whether the dates follow the ids or not (an import: the walk gives up)."""
    if db.is_postgres():
        pytest.skip("SQLite's walk; PostgreSQL keeps the subquery")
    monkeypatch.setattr(search_query, "COUNT_MAX", 2)
    monkeypatch.setattr(listing, "_first_stretch", lambda wanted, spacing: 2)  # short stretches, many of them
    app.config["PAGE_SIZE"] = 3
    ids = [new_ticket(clinician, title=f"Retainer {n}" if n % 3 else f"Other {n}", description="Loose.",
                      priority=str(n % 4)) for n in range(14)]
    start = dt.datetime(2026, 11, 2, 8, 0)
    for position, ticket_id in enumerate(ids):
        hours = position if ordered else (position * 5) % 14  # out of order: a date shuffle of the ids
        query(lambda ticket_id=ticket_id, hours=hours: Ticket.update(
            created_at=start + dt.timedelta(hours=hours)).where(Ticket.id == ticket_id).execute())
    query(lambda: Ticket.update(status=Status.RESOLVED.value).where(Ticket.id.in_(ids[5:9])).execute())
    calls = []
    stretches = search_query.found_between
    monkeypatch.setattr(search_query, "found_between", lambda *args: calls.append(args[2:]) or stretches(*args))
    urls = [f"/support/?q=retainer&sort={sort}{status}&page={page}"
            for sort in ("-date", "date", "-priority", "title", "status")
            for status in ("", "&status=resolved") for page in (1, 2, 3)]
    walked = {url: table_ids(support, url) for url in urls}
    monkeypatch.setattr(listing, "WALK_MAX", 0)
    assert walked == {url: table_ids(support, url) for url in urls}
    matching = [i for n, i in enumerate(ids) if n % 3]
    first = walked["/support/?q=retainer&sort=date&page=1"] + walked["/support/?q=retainer&sort=date&page=2"]
    assert first == (matching[:6] if ordered else sorted(matching, key=lambda i: (ids.index(i) * 5) % 14)[:6])
    assert calls  # the walk was taken (every stretch is narrow among 14 tickets)
    # Where the dates do not follow the ids, a stretch walked spreads over many more ids than it holds: the
    # walk gives up at once (WALK_SPREAD) rather than read the index's matches over a wide range.
    monkeypatch.setattr(listing, "WALK_MAX", 8192)
    monkeypatch.setattr(listing, "WALK_SPREAD", 1)
    calls.clear()
    assert table_ids(support, "/support/?q=retainer&sort=date") == walked["/support/?q=retainer&sort=date&page=1"]
    assert bool(calls) == ordered


def test_the_walk_sizes_its_stretches_by_the_matches_met(app, clinician, support, new_ticket, monkeypatch):
    """The walk's first stretch is as many ids as the matches wanted take at the spacing of the index's newest
    matches, twice over; each next one as many as those still wanted take at the rate met so far, half as many
    again (not twice the last). The newest ten tickets all match, the thirty before them one in three; 15 are
    wanted (a page of 14 and one to know there is a next). The third newest match is two ids back from the
    newest ticket: 15 x 2/3 x 2 = 20 ids first, 13 matched; then 2 x 20 x 1.5 / 13 = 4 ids (one match), then
    1 x 24 x 1.5 / 14 = 2 (the last one)."""
    if db.is_postgres():
        pytest.skip("SQLite's walk")
    monkeypatch.setattr(search_query, "COUNT_MAX", 2)
    monkeypatch.setattr(listing, "WALK_LEAST", 1)
    app.config["PAGE_SIZE"] = 14
    ids = [new_ticket(clinician, title=f"Retainer {n}" if n >= 30 or n % 3 == 0 else f"Other {n}",
                      description="Loose.") for n in range(40)]
    start = dt.datetime(2026, 11, 2, 8, 0)
    query(lambda: [Ticket.update(created_at=start + dt.timedelta(hours=n)).where(Ticket.id == i).execute()
                   for n, i in enumerate(ids)])
    calls = []
    stretches = search_query.found_between
    monkeypatch.setattr(search_query, "found_between", lambda *args: calls.append(args[2:]) or stretches(*args))
    newest_first = table_ids(support, "/support/?q=retainer&sort=-date")
    assert newest_first == [i for n, i in enumerate(ids) if n >= 30 or n % 3 == 0][::-1][:14]
    assert calls == [(ids[20], ids[39]), (ids[16], ids[19]), (ids[14], ids[15])]


def test_a_ticket_filed_during_the_walk_is_taken_once(app, clinician, support, new_ticket, monkeypatch):
    """The walk reads the table in several statements: a ticket filed between two of them shifts the newest
    first order by one, and the ticket at the edge of a stretch comes again; it is taken once, so the page
    is still full and says there is a next one."""
    if db.is_postgres():
        pytest.skip("SQLite's walk")
    monkeypatch.setattr(search_query, "COUNT_MAX", 2)
    monkeypatch.setattr(listing, "_first_stretch", lambda wanted, spacing: 2)
    app.config["PAGE_SIZE"] = 3
    ids = [new_ticket(clinician, title=f"Retainer {n}", description="Loose.") for n in range(6)]
    stretches, calls = search_query.found_between, []

    def filing_meanwhile(*args):
        if not calls:
            calls.append(new_ticket(clinician, title="Retainer late", description="Filed meanwhile."))
        return stretches(*args)

    monkeypatch.setattr(search_query, "found_between", filing_meanwhile)
    page = support.get("/support/?q=retainer&sort=-date", htmx=True).get_data(as_text=True)
    assert [int(i) for i in ROWS.findall(page)] == ids[:-4:-1] and calls
    assert "page=2" in page


def test_case_number_and_tracking_number(app, clinician, other_clinician, support, new_ticket):
    case = make_case(ADA, number="QX-7731", patient_name="Ines Vogelsang")
    query(lambda: index.reindex_cases([case.id]))  # made directly, not through the case form
    ticket_id = new_ticket(clinician, title="Shipment late", description="Still waiting.", case_number="QX-7731",
                           tracking_number="1Z999AA10123456784")
    assert found(clinician, "QX-7731") == [ticket_id]
    assert found(clinician, "1Z999AA10123456784") == [ticket_id]
    # The case itself, for those who may see it.
    page = clinician.get("/search", query_string={"q": "Vogelsang"}).get_data(as_text=True)
    assert f'href="/cases/{case.id}"' in page and "<mark>Vogelsang</mark>" in page
    assert f'href="/cases/{case.id}"' in support.get("/search?q=Vogelsang").get_data(as_text=True)
    assert f'href="/cases/{case.id}"' not in other_clinician.get("/search?q=Vogelsang").get_data(as_text=True)
    assert found(other_clinician, "QX-7731") == []


HOSTILE = [
    '"', '""', '"unbalanced', "*", "tray*", "**", "NEAR", "NEAR(tray cracked, 2)", "tray OR cracked", "OR",
    "-tray", "- -", ":", "title:tray", "{title}: tray", "^tray", "tray AND", "AND", "NOT tray", "(", ")",
    "'; DROP TABLE ticket; --", "1' OR '1'='1", "%", "_", "\\", "\x00", "😀", "🦷 tray", "مرحبا بالعالم",
    "שלום", "tray" * 2500, "a " * 5000, "x" * 10000, "SP-", "SP-9999999999999", "0", "-1", "&<>'\"",
    "tray & cracked", "tray | cracked", "tray:*", "!tray", "<->", "tray <-> cracked",
]


@pytest.mark.parametrize("typed", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_input_never_fails(clinician, support, typed):
    for browser in (clinician, support):
        for url in ("/search", "/support/"):
            response = browser.get(url, query_string={"q": typed}, htmx=url != "/search")
            assert response.status_code == 200, (url, response.get_data(as_text=True)[-300:])
        assert browser is clinician or support.get("/queue/", query_string={"q": typed}).status_code == 200


def test_hostile_input_finds_what_it_can(clinician, new_ticket):
    ticket_id = new_ticket(clinician, title="Tray cracked", description="Cracked near the OR of tooth 21.")
    assert found(clinician, "NEAR(tray cracked)") == [ticket_id]  # words, not syntax
    assert found(clinician, "tray OR nothingmatches") == []  # OR is a word: both must match
    assert found(clinician, '"tray cracked') == [ticket_id]
    assert found(clinician, "tray:*") == [ticket_id]
    assert found(clinician, "🦷 tray") == [ticket_id]
    assert found(clinician, "tray " * 2000) == [ticket_id]  # 10,000 characters, cut at 200
    page = clinician.get("/search", query_string={"q": "😀"}).get_data(as_text=True)
    assert "Nothing found for" in page
    page = clinician.get("/search", query_string={"q": "no such words anywhere"}).get_data(as_text=True)
    assert "Nothing found for" in page


def test_snippets_are_escaped(clinician, new_ticket):
    ticket_id = new_ticket(clinician, title="<b>bold</b> title",
                           description='<script>alert("tray")</script> the tray <img src=x onerror=alert(1)>')
    page = clinician.get("/search", query_string={"q": "tray"}).get_data(as_text=True)
    assert RESULTS.findall(page) == [str(ticket_id)]
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;" in page and "<mark>tray</mark>" in page
    marked, hit = highlight("<mark>x</mark> tray", search_query.parse("tray"))
    assert hit and str(marked) == "&lt;mark&gt;x&lt;/mark&gt; <mark>tray</mark>"


def test_search_box_is_a_get_form_that_keeps_sort_and_status(clinician, new_ticket):
    new_ticket(clinician, title="Tray cracked", description="x")
    page = clinician.get("/support/?status=open&q=tray").get_data(as_text=True)
    assert 'role="search" method="get" action="/support/"' in page
    assert 'hx-trigger="input changed delay:300ms, search"' in page
    assert 'name="status" value="open" form="ticket-search"' in page
    assert 'value="tray"' in page
    # Links of the table (filters, sort, pages) keep the search.
    assert "q=tray" in re.search(r'<nav class="quick-filters".*?</nav>', page, re.S).group(0)


def test_index_kept_in_step_and_rebuilt(app, clinician, support, new_ticket):
    ticket_id = new_ticket(clinician, title="Alpha", description="Bravo")
    reply(support, ticket_id, "charlie delta")
    assert found(clinician, "charlie") == [ticket_id]

    def rebuild():
        with db.database.atomic():
            index.rebuild()
    query(rebuild)
    assert found(clinician, "charlie") == [ticket_id] and found(clinician, "alpha") == [ticket_id]


def test_the_migration_indexes_existing_tickets(tmp_path):
    database, runner = legacy_database(tmp_path / "m.db", [("Brüche", "Zahnschienen gebrochen", 0)])
    runner.up()
    rows = database.execute_sql("SELECT rowid, title, body FROM search_ticket").fetchall()
    assert rows == [(1, "bruch sp 000001", "zahnschi gebroch")]


def test_migration_0023_gives_the_index_its_requester_terms(tmp_path):
    """An index built before 0023 (three columns) gets the owner column, filled from the stored terms."""
    database, runner = legacy_database(tmp_path / "m.db", [("Brüche", "Zahnschienen gebrochen", 0)])
    runner.up()
    runner.down("0022_queue_order")  # back to the index as 0016 first built it
    columns = [row[1] for row in database.execute_sql("PRAGMA table_info(search_ticket)").fetchall()]
    assert columns == ["title", "body", "internal"]
    runner.up()
    rows = database.execute_sql("SELECT rowid, title, body, internal, owner FROM search_ticket").fetchall()
    assert rows == [(1, "bruch sp 000001", "zahnschi gebroch", "", "owner1")]
    # With a prefix index for words being typed, as a new database gets it (migration 0016, today's index).
    made = database.execute_sql("SELECT sql FROM sqlite_master WHERE name = 'search_ticket'").fetchone()[0]
    assert "prefix = '2 3 4'" in made and index.TICKET_OPTIONS in made
    assert database.execute_sql("SELECT rowid FROM search_ticket WHERE search_ticket MATCH 'br*'").fetchall() == [(1,)]
    found = database.execute_sql("SELECT rowid FROM search_ticket WHERE search_ticket MATCH ?",
                                 [search_query.parse("bruch").fts5(False, owner=1)]).fetchall()
    assert found == [(1,)]
    # The erasure trigger is back: a deleted ticket leaves no entry.
    database.execute_sql("DELETE FROM ticket")
    assert database.execute_sql("SELECT COUNT(*) FROM search_ticket").fetchone()[0] == 0


def test_migration_0026_gives_the_index_the_requesters_own_terms(tmp_path):
    """An index built before 0026 gets the column `mine`: the title's and public text's stored terms as the
    requester's own, a lone marker between title and body; down takes it away again."""
    database, runner = legacy_database(tmp_path / "m.db", [("Brüche", "Zahnschienen gebrochen", 0)])
    runner.up()
    runner.down("0026_search_own_terms")
    columns = [row[1] for row in database.execute_sql("PRAGMA table_info(search_ticket)").fetchall()]
    assert columns == ["title", "body", "internal", "owner"]
    runner.up("0026_search_own_terms")
    rows = database.execute_sql("SELECT rowid, title, body, owner, mine FROM search_ticket").fetchall()
    own = "1obruch 1osp 1o000001 1o 1ozahnschi 1ogebroch"
    assert rows == [(1, "bruch sp 000001", "zahnschi gebroch", "owner1", own)]
    made = database.execute_sql("SELECT sql FROM sqlite_master WHERE name = 'search_ticket'").fetchone()[0]
    assert index.TICKET_OPTIONS in made
    for typed, expected in (('"1obruch"', [(1,)]), ('"1ozahnsch"*', [(1,)]), ('"1osp 1o000001"', [(1,)]),
                            ('"1obruch 1ozahnschi"', []), ('"2obruch"', [])):
        sql = "SELECT rowid FROM search_ticket WHERE search_ticket MATCH ?"
        assert database.execute_sql(sql, [f"{{mine}} : {typed}"]).fetchall() == expected, typed
    database.execute_sql("DELETE FROM ticket")
    assert database.execute_sql("SELECT COUNT(*) FROM search_ticket").fetchone()[0] == 0


def own_terms_of(database) -> list[tuple[int, str]]:
    return database.execute_sql("SELECT rowid, mine FROM search_ticket ORDER BY rowid").fetchall()


def test_migration_0028_puts_the_status_into_the_own_terms(tmp_path):
    """0028 writes each ticket's status into its own terms ("1o3bruch"), as the index writes them today, and
    a trigger writes them again when the status changes, whatever statement changes it; down undoes both."""
    database, runner = legacy_database(tmp_path / "m.db", [("Brüche", "Zahnschienen gebrochen", 0),
                                                           ("Bruch", "Schiene", 3)])
    runner.up()
    runner.down("0028_search_own_status")
    before = [(1, "1obruch 1osp 1o000001 1o 1ozahnschi 1ogebroch"), (2, "1obruch 1osp 1o000002 1o 1oschien")]
    assert own_terms_of(database) == before
    runner.up()
    after = [(1, "1o0bruch 1o0sp 1o0000001 1o0 1o0zahnschi 1o0gebroch"), (2, "1o3bruch 1o3sp 1o3000002 1o3 1o3schien")]
    assert own_terms_of(database) == after
    index.reindex_tickets([1, 2], database)  # what the index writes today
    assert own_terms_of(database) == after

    def own(typed, statuses=Status, owner=1):
        sql = "SELECT rowid FROM search_ticket WHERE search_ticket MATCH ? ORDER BY rowid"
        return [i for (i,) in database.execute_sql(sql, [search_query.parse(typed).fts5_own(owner, statuses)])]

    assert own("bruch") == [1, 2] and own("bruch", [Status.OPEN]) == [1] and own("bruch", [Status.RESOLVED]) == [2]
    assert own("zahnsch", [Status.RESOLVED]) == [] and own('"sp 000002"', [Status.RESOLVED, Status.CLOSED]) == [2]
    assert own("bruch", owner=2) == [] and own("bruch", [Status.IN_PROGRESS, Status.WAITING, Status.CLOSED]) == []
    # A status change moves the ticket's terms to the new status (the trigger), and only that ticket's.
    database.execute_sql("UPDATE ticket SET status = 1 WHERE id = 1")
    assert own_terms_of(database) == [(1, after[0][1].replace("1o0", "1o1")), after[1]]
    assert own("bruch", [Status.IN_PROGRESS]) == [1] and own("bruch", [Status.OPEN]) == []
    database.execute_sql("UPDATE ticket SET title = 'x' WHERE id = 2")  # not a status change: left alone
    assert own_terms_of(database)[1] == after[1]
    runner.down("0028_search_own_status")
    assert own_terms_of(database) == [(1, before[0][1]), before[1]]
    database.execute_sql("UPDATE ticket SET status = 4 WHERE id = 1")  # no trigger any more
    assert own_terms_of(database) == [(1, before[0][1]), before[1]]


def test_a_clinicians_search_counts_each_status_in_the_index(clinician, other_clinician, support, new_ticket):
    """SQLite: a clinician's filter counts are the lengths of their own terms' lists, one per status (no
    ticket looked up): a status change, by any path, moves the ticket between them at once."""
    first = new_ticket(clinician, title="Wobbly tray", description="x")
    second = new_ticket(clinician, title="Wobbly aligner", description="y")
    new_ticket(other_clinician, title="Wobbly too", description="z")

    def counts(url="/support/?q=wobbl"):
        page = chips(clinician, url)
        return dict(re.findall(r'class="chip ([\w-]*)[^"]*"[^>]*>[^<]*<span class="count">(\d+)<', page))

    assert counts() == {"": "2", "status-open": "2", "status-in-progress": "0", "status-waiting": "0",
                        "status-resolved": "0", "status-closed": "0"}
    assert support.post(f"/support/tickets/{first}/status", {"status": str(int(Status.RESOLVED))}).status_code == 303
    assert counts()["status-open"] == "1" and counts()["status-resolved"] == "1"
    assert table_ids(clinician, "/support/?q=wobbl&status=resolved") == [first]
    query(lambda: Ticket.update(status=int(Status.CLOSED)).where(Ticket.id == second).execute())
    assert counts()["status-open"] == "0" and counts()["status-closed"] == "1" and counts()[""] == "2"
    assert table_ids(clinician, "/support/?q=wobbl&status=closed") == [second]
    assert sorted(table_ids(clinician, "/support/?q=wobbl")) == sorted([first, second])


def test_a_clinicians_table_reads_their_own_terms(clinician, other_clinician, new_ticket):
    """SQLite: a clinician's table search goes through the entry's own terms (index.own_terms), which no
    typed text can turn into another requester's, and in which no phrase runs from title into body."""
    if db.is_postgres():
        pytest.skip("SQLite's column `mine`; PostgreSQL ANDs the requester lexeme")
    mine = new_ticket(clinician, title="Upper", description="Arch tray cracked.")
    theirs = new_ticket(other_clinician, title="Tray cracked", description="Lower arch.")
    owner = query(lambda: Ticket.get_by_id(theirs).requester_id)
    assert table_ids(clinician, "/support/?q=cracked") == [mine]
    assert table_ids(clinician, '/support/?q="arch tray"') == [mine]
    assert table_ids(clinician, '/support/?q="upper arch"') == []  # title and body, as two columns
    for typed in (f"{owner}otray", f"{owner}o", f'"{owner}otray cracked"', f"{owner}otra"):
        assert table_ids(clinician, f"/support/?q={typed}") == [], typed
    assert table_ids(other_clinician, "/support/?q=cracked") == [theirs]
    # The table reads that column: without their own terms the ticket is not found there.
    query(lambda: db.database.execute_sql("UPDATE search_ticket SET mine = '' WHERE rowid = ?", [mine]))
    assert table_ids(clinician, "/support/?q=cracked") == []


def test_the_requester_term_cannot_be_typed_and_a_stale_one_shows_nothing(clinician, other_clinician, support,
                                                                         new_ticket):
    mine = new_ticket(clinician, title="Tray wobbly", description="Upper tray.")
    theirs = new_ticket(other_clinician, title="Tray wobbly too", description="Lower tray.")
    owner = query(lambda: User.get(User.email == "dr.ada@clinic.test").id)
    # Whatever is typed stays in the text columns: the requester terms ("owner7" / "=7") find nothing.
    for typed in (f"owner{owner}", f"={owner}", f'"owner{owner}"', f"owner{owner} tray"):
        assert found(support, typed) == [] and table_ids(support, f"/support/?q={typed}") == [], typed
        assert found(clinician, typed) == [] and table_ids(clinician, f"/support/?q={typed}") == [], typed
    assert found(clinician, "wobbly") == [mine] and found(other_clinician, "wobbly") == [theirs]
    # An entry whose requester term were wrong (the index says "mine"): the ticket table still decides.
    wrong = index.owner_term(owner, db.is_postgres())
    if db.is_postgres():
        sql = ("UPDATE search_ticket SET public_doc = public_doc || array_to_tsvector(ARRAY[%s]), "
               "staff_doc = staff_doc || array_to_tsvector(ARRAY[%s]) WHERE ticket_id = %s")
        query(lambda: db.database.execute_sql(sql, [wrong, wrong, theirs]))
    else:
        query(lambda: db.database.execute_sql("UPDATE search_ticket SET owner = ? WHERE rowid = ?", [wrong, theirs]))
    assert found(clinician, "wobbly") == [mine]
    assert table_ids(clinician, "/support/?q=wobbly") == [mine]
    assert table_ids(clinician, "/support/?q=wobbl") == [mine]


def test_terms():
    assert text.terms("Brüche") == text.terms("Bruch") == "bruch"
    assert text.terms("Straße, STRASSE") == "strass strass"
    assert text.terms("SP-000042 tray_7") == "sp 000042 tray 7"
    assert text.terms("😀🦷") == ""


def test_scan_file_names_and_a_scan_in_an_internal_note(app, clinician, support, new_ticket, redis_conn):
    ticket_id = new_ticket(clinician, title="Scan rejected", description="Holes.",
                           scan=(io.BytesIO(arch_stl()), "clinic7_lowerjaw_2026-11-20.stl"))
    assert found(clinician, "lowerjaw") == [ticket_id]
    response = support.post(f"/support/tickets/{ticket_id}/replies",
                            {"body": "Lab's own re-export.", "internal": "y",
                             "scan": (io.BytesIO(arch_stl()), "labsecret-reexport.stl")},
                            content_type="multipart/form-data")
    assert response.status_code == 303
    assert found(support, "labsecret") == [ticket_id]
    assert found(clinician, "labsecret") == []


def test_many_matches_filter_through_the_subquery(clinician, other_clinician, support, new_ticket, monkeypatch):
    """Above FEW_MATCHES the table filters through the index subquery instead of a list of ids: the same
    tickets, the same access."""
    monkeypatch.setattr(search_query, "FEW_MATCHES", 0)
    mine = new_ticket(clinician, title="Wobbly tray", description="x")
    theirs = new_ticket(other_clinician, title="Wobbly aligner", description="y")
    reply(support, theirs, NOTE, internal=True)
    assert table_ids(clinician, "/support/?q=wobbly") == [mine]
    assert sorted(table_ids(support, "/support/?q=wobbly")) == [mine, theirs]
    assert table_ids(support, f"/support/?q={NOTE_WORD}") == [theirs]
    assert table_ids(other_clinician, f"/support/?q={NOTE_WORD}") == []
    assert table_ids(clinician, f"/support/?q=SP-{mine:06d}") == [mine]
    assert table_ids(support, f"/queue/?q={NOTE_WORD}", htmx=False) == [theirs]


def chips(browser, url: str) -> str:
    page = browser.get(url, htmx=True).get_data(as_text=True)
    return re.search(r'<nav class="quick-filters".*?</nav>', page, re.S).group(0)


def test_counts_of_a_common_word_are_capped_for_staff(support, clinician, other_clinician, new_ticket, monkeypatch):
    """Above COUNT_MAX tickets found, staff see "1,000+" (here "2+") and no count per status, instead of
    a count that reads every match; the table itself still lists them all."""
    monkeypatch.setattr(search_query, "COUNT_MAX", 2)
    ids = [new_ticket(clinician, title=f"Wobbly tray {n}", description="x") for n in range(2)]
    ids.append(new_ticket(other_clinician, title="Wobbly aligner", description="y"))
    assert sorted(table_ids(support, "/support/?q=wobbly")) == sorted(ids)
    capped = chips(support, "/support/?q=wobbly")
    assert '<span class="count">2+</span>' in capped and capped.count('class="count"') == 1
    assert "More than 2 tickets." in support.get("/support/?q=wobbly", htmx=True).get_data(as_text=True)
    # Filtered by a status, how many of that status is not known: no figure rather than a wrong one.
    filtered = support.get("/support/?q=wobbly&status=open", htmx=True).get_data(as_text=True)
    assert "More than" not in filtered and " tickets.</p>" not in filtered
    assert sorted(int(i) for i in ROWS.findall(filtered)) == sorted(ids)
    # At the cap or below, exact counts per status.
    exact = chips(support, "/support/?q=aligner")
    assert '<span class="count">1</span>' in exact and "+" not in exact


def test_a_typed_number_that_is_also_a_common_word_is_capped_for_staff(support, clinician, new_ticket, monkeypatch):
    """A typed number is a ticket number and a word: when the word is in more than COUNT_MAX other tickets
    (a lot number in their titles), staff see the capped count too, and every ticket found is listed."""
    monkeypatch.setattr(search_query, "COUNT_MAX", 2)
    numbered = new_ticket(clinician, title="Tray cracked", description="x")
    lots = [new_ticket(clinician, title=f"Lot {numbered} tray {n}", description="y") for n in range(3)]
    assert sorted(table_ids(support, f"/support/?q={numbered}")) == sorted([numbered, *lots])
    assert '<span class="count">2+</span>' in chips(support, f"/support/?q={numbered}")
    # Within the cap, exact counts: the lots alone are three, one more than COUNT_MAX + the number's one.
    monkeypatch.setattr(search_query, "COUNT_MAX", 3)
    assert '<span class="count">4</span>' in chips(support, f"/support/?q={numbered}")


def test_a_clinicians_counts_are_their_own_when_the_word_is_common(clinician, other_clinician, support, new_ticket,
                                                                   monkeypatch):
    """Many matches across the portal: a clinician's counts still come from their own tickets only (never
    "1,000+" from other clinicians' tickets), and internal notes count for nothing."""
    monkeypatch.setattr(search_query, "COUNT_MAX", 1)
    mine = new_ticket(clinician, title="Wobbly tray", description="x")
    for n in range(3):
        theirs = new_ticket(other_clinician, title=f"Wobbly aligner {n}", description="y")
    reply(support, theirs, f"wobbly {NOTE}", internal=True)
    reply(support, mine, f"{NOTE} noted", internal=True)
    assert table_ids(clinician, "/support/?q=wobbly") == [mine]
    counted = chips(clinician, "/support/?q=wobbly")
    assert "+" not in counted and re.findall(r'class="count">(\d+)<', counted).count("1") == 2  # All and Open
    assert table_ids(clinician, f"/support/?q={NOTE_WORD}") == []
    assert set(re.findall(r'class="count">(\d+)<', chips(clinician, f"/support/?q={NOTE_WORD}"))) == {"0"}
    # More of their own than FEW_MATCHES: not counted either, "1+" (more than one).
    monkeypatch.setattr(search_query, "FEW_MATCHES", 1)
    second = new_ticket(clinician, title="Wobbly again", description="z")
    capped = chips(clinician, "/support/?q=wobbly")
    assert '<span class="count">1+</span>' in capped and capped.count('class="count"') == 1
    assert sorted(table_ids(clinician, "/support/?q=wobbly")) == [mine, second]
