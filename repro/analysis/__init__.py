"""Analyses of trained models that no paper's table holds (DSNet Fig. 4's sampling points)."""
