"""Figures shared by notebooks and the book (matplotlib; no state)."""
