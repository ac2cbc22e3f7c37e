"""Damped-least-squares IK: settings, joint limits, the IK terms, singularity slow-down, external solvers' answers."""
