"""Practice Insights: ticket, service-level, scan and case figures as server-drawn SVG charts, each
with its numbers as a table and a CSV download."""
