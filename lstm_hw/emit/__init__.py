"""Verilog, metadata, constraints and Vivado scripts for a design, one file per module.
"""
