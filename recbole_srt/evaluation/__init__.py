"""Sampled-negative evaluation: deterministic candidates, one sequence encoding per user."""
