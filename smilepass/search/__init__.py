"""Full-text search over tickets and cases, inside the database the app already has.

text: how words become index terms (the same on both databases); index: the index tables, kept in step
in the same transaction as every write that changes searchable text; query: parsing what was typed and
finding matches a user may see; snippet: the highlighted excerpt under a result; views: /search."""
