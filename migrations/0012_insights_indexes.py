"""Indexes for Practice Insights, where EXPLAIN showed full scans of the ticket table at 100,000
tickets: tickets first answered / resolved in a date range (covering the minutes, the breach flag
and the requester, so the percentiles and the clinic filter read the index alone), the backlog by
status and category, one clinician's tickets resolved per week, and escalation steps in a date range."""
from peewee import *

INDEXES = [
    ("ticket", ("first_response_at", "response_minutes", "response_breached", "requester_id")),
    ("ticket", ("resolved_at", "resolution_minutes", "resolution_breached", "requester_id")),
    ("ticket", ("status", "category", "requester_id")),
    ("ticket", ("requester_id", "resolved_at")),
    ("escalation", ("created_at", "level", "actor_id")),
]


def up(migrator, db):
    for table, columns in INDEXES:
        migrator.migrate(migrator.add_index(table, columns))


def down(migrator, db):
    from playhouse.migrate import make_index_name

    for table, columns in reversed(INDEXES):
        migrator.migrate(migrator.drop_index(table, make_index_name(table, columns)))
