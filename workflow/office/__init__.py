"""The office's reference data: institutions, programmes, modules, courses, users."""
