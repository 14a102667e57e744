"""Experiment drivers that notebooks call: one function per kind of run, no notebook logic."""
