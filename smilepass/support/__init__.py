"""The Support page (New Request beside the ticket table), the ticket page with its thread and status
workflow, and the rules behind them: tickets, drafts, request quality, warranty windows, tooth notation."""
