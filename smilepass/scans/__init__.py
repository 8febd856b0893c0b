"""Intraoral scans: upload staging and storage, the repair job around the Flask-free mesh package, the
sweep, and the scan panels on ticket and case pages."""
