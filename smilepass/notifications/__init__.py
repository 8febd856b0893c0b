"""Notification machinery: the events people choose to hear about, the mail outbox and its hand-over
to the worker, and the in-app inbox. What each change says lives with its feature (notices.py)."""
