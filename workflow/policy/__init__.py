"""Who may see and do what: actors, sign-in and the one permission table."""
