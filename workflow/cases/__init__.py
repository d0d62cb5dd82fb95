"""The case engine: fire() and its storage, guards, deadlines, audit chain, outbox, sweep, reads."""
