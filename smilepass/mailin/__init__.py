"""Answers by email (#16): a mail to a ticket's tokened reply address becomes a reply in the ticket,
written as the user the token names, through the same code path as a reply in the app.

  parse.py    one RFC 5322 message → text, attachments, auto-reply and authentication verdicts (no Flask,
              no database); refuses oversized mail, too many parts, broken MIME, unknown charsets
  quotes.py   the new text of a reply: quoted mail, quote headers and signatures cut off
  receive.py  the rules: token, sender, visibility, closed tickets, duplicates, then the reply
  cli.py      `flask mail receive` for an MTA pipe (sysexits codes)
See docs/mail-in.md."""
