"""Stream beats of several elements (``hardware.io_lanes``): packing inputs, unpacking outputs.

The contract (see :class:`lstm_hw.generators.top.LSTMTop`): ``lanes``
elements per beat, element ``e`` in bits ``e * width ..`` of ``tdata``,
each sign-extended to ``width`` bits (whole bytes). Each timestep starts a
new beat, so a timestep of ``n`` elements takes ``ceil(n / lanes)`` beats and
its last beat may be partial: unused input lanes are ignored, unused output
lanes must be zero. ``tlast`` marks the last beat of a sequence.

Plain functions of integers, with no simulator in them: the cocotb benches
and the Amaranth-simulator tests share them.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["beats_per_step", "element_cycles", "input_beats", "transfer_beats", "output_elements"]


def beats_per_step(elements: int, lanes: int) -> int:
    """Beats a timestep of ``elements`` elements takes."""
    return -(-elements // lanes)


def element_cycles(beat_cycles: Sequence[int], elements: int, lanes: int) -> list[int]:
    """The cycle of each element's beat, given each beat's, in timesteps of ``elements`` elements."""
    step = beats_per_step(elements, lanes)
    return [c for b, c in enumerate(beat_cycles) for _ in range(min(lanes, elements - (b % step) * lanes))]


def input_beats(sequences, lanes: int, width: int) -> list[tuple[int, bool]]:
    """The input beats ``(tdata, tlast)`` of sequences ``(T_k, I)`` of element codes.

    Unused lanes of a timestep's last beat are zero.
    """
    mask = (1 << width) - 1
    beats = []
    for seq in sequences:
        for t, row in enumerate(seq):
            n = beats_per_step(len(row), lanes)
            for b in range(n):
                word = 0
                for e, v in enumerate(row[b * lanes:(b + 1) * lanes]):
                    word |= (int(v) & mask) << (e * width)
                beats.append((word, t == len(seq) - 1 and b == n - 1))
    return beats


def transfer_beats(codes, per_step: int, lanes: int, width: int) -> list[tuple[int, bool]]:
    """The input beats ``(tdata, tlast)`` of one transfer: element ``codes`` end to end, timesteps of
    ``per_step``, ``tlast`` on the last beat. The last timestep may be cut short (a framing error the
    hardware completes with zero elements); lanes past the codes are zero.
    """
    codes = [int(v) for v in codes]
    rows = [codes[s:s + per_step] for s in range(0, len(codes), per_step)]
    beats = input_beats([rows], lanes, width)
    return [(word, n == len(beats) - 1) for n, (word, _) in enumerate(beats)]


def output_elements(beats: Sequence[tuple[int, bool]], lanes: int, width: int, bits: int,
                    per_step: int) -> list[tuple[int, bool, int]]:
    """The elements ``(value, last, beat index)`` of output beats ``(tdata, tlast)``, timesteps of ``per_step``.

    ``value`` is the signed value of the element's ``bits`` low bits; ``last``
    is the beat's ``tlast`` on its last element and False on the others.
    Raises :class:`ValueError` for a beat that breaks the packing: an element
    not sign-extended to ``width`` bits, or a nonzero unused lane. The beats
    must cover whole timesteps.
    """
    step = beats_per_step(per_step, lanes)
    if len(beats) % step:
        raise ValueError(f"{len(beats)} beats do not make whole timesteps of {step} beats")
    mask = (1 << width) - 1
    out = []
    for index, (word, last) in enumerate(beats):
        used = min(lanes, per_step - (index % step) * lanes)
        for e in range(lanes):
            field = (word >> (e * width)) & mask
            if e >= used:
                if field:
                    raise ValueError(f"beat {index}: unused lane {e} is {field:#x}, not zero")
                continue
            value = field & ((1 << bits) - 1)
            value -= (value >> (bits - 1)) << bits
            if field != value & mask:
                raise ValueError(f"beat {index}: lane {e} ({field:#x}) is not sign-extended from {bits} bits")
            out.append((value, last and e == used - 1, index))
    return out
