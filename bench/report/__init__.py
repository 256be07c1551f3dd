"""Figures and summaries drawn from a grid's tidy tables."""
