"""Admin screens: users, the mail outbox, clinic settings, clinics with their tiers, holidays."""
