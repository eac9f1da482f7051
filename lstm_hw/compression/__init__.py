"""From a trained model to what the hardware holds: pruning while fine-tuning, calibrated formats, accuracy at
every stage, figures.
"""
