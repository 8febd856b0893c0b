"""Service levels: the business calendar (hours, days, holidays), SLA clocks and breaches, the
escalation path and the warnings before a deadline passes."""
