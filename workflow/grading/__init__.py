"""Grade conversion: the modified Bavarian formula and percentile grading tables."""
