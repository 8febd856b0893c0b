"""Signing in and out, password resets and changes, and the accounts behind them."""
