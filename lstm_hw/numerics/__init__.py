"""Numerics, the one source of truth: fixed-point formats and their integer operations, sigmoid/tanh tables, the
cell update, the bank-balanced layout, and the quality of an approximation.
"""
