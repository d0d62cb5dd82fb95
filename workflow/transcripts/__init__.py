"""Transcripts in and out: ELMO/EWP parsing, their import into cases, ELMO export."""
