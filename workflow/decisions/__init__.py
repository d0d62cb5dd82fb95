"""Decisions and what follows them: notices, precedents, cohort decisions."""
