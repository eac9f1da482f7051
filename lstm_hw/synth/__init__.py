"""Yosys synthesis for Xilinx 7-series and the report built on it: fit, clock, throughput.
"""
