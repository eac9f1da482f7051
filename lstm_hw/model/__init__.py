"""The model: weights in PyTorch's layout read from files, what the hardware keeps of them, the design that the
generators and the golden model share, and the bit-exact golden model.
"""
