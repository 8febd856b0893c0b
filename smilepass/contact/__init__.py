"""The urgent Contact us form (open without signing in) and the supervisors' Contact inbox."""
