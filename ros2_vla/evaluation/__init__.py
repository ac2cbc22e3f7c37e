"""Closed-loop evaluation in the sim: episodes on held-out seeds, statistics, reports and videos."""
