"""The configuration: the TOML file as frozen, validated dataclasses, the FPGA parts and boards, and seeded
random configs.
"""
