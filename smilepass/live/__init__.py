"""Live ticket pages: what changed on a ticket (or in a user's inbox) is told over Redis pub/sub once
it is committed, and an open page hears it through Server-Sent Events (see docs/live.md)."""
