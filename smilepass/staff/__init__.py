"""The staff side of support: the queue, assignment, bulk changes, canned replies and the notice
that someone else is replying. Staff only; to anyone else these pages do not exist (404)."""
