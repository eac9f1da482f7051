"""The weight image: what ``lstm-hw pack`` writes and the ``s_axis_weights`` port loads (``hardware.weights = "ram"``).

An image is little-endian 32-bit words:

- the header (:data:`HEADER_WORDS` words): :data:`MAGIC`, the structure digest
  (:data:`DIGEST_WORDS` words, :func:`structure_digest`) and the image's length
  in words, the header included;
- then every loadable memory (:class:`LoadableMemory`) in the order the top
  lists them: layer 0's matrix unit, then layer 1's, ..., then the head's; in
  each, its weight memories by MAC-chain position, then its biases. A memory
  gives its entries from address 0; an entry gives its fields in order, each
  in ``ceil(bits / 32)`` words, low word first, the unused top bits zero.

A weight memory's entry is a row of its :class:`~.mvm_rom.RamShape`: the word
of :func:`~.mvm_rom.rom_words` at its address, or, folded, the words at
``r``, ``r + rows``, ... side by side, low word first. Its fields are columns
of :data:`COLUMN_BITS` (the last one narrower), so the entry is simply that
row in ``ceil(bits / 32)`` words. A bias memory's entry is one
pass: a field per row lane, the code of the accumulator's start value
(:class:`~.mvm_sum.StartCode`) in two's complement: the bias code plus the
rounding offset's bits above ``bias_shift``. The hardware wires the offset's
``bias_shift`` low bits below it: the start value is the bias aligned to the
product, plus the rounding offset.

Every field starts on a word, so the loader writes a field as its last word
arrives, from the words before it (:class:`~.weight_loader.WeightLoader`). One
table, this module's, gives the layout to the packer and the loader.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields

import numpy as np

__all__ = ["WORD_BITS", "MAGIC", "DIGEST_WORDS", "HEADER_WORDS", "COLUMN_BITS", "LoadableMemory", "split_fields",
           "column_fields", "structure_digest", "header_words", "image_words", "image_bytes", "read_image_header"]

#: Bits of an image word and of the ``s_axis_weights`` port.
WORD_BITS = 32
#: The first word of every image: ``"LSTW"`` in ASCII, little end first.
MAGIC = int.from_bytes(b"LSTW", "little")
#: Words of the structure digest: the first 16 bytes of a SHA-256.
DIGEST_WORDS = 4
#: The magic word, the digest and the length.
HEADER_WORDS = 2 + DIGEST_WORDS
#: The widest field: 9 words, 8 block RAM columns of 36 bits, 4 of 72. A weight memory wider than
#: this is written a column at a time, so the loader holds at most one column's words.
COLUMN_BITS = 288
#: Bumped whenever the meaning of an image's contents changes; part of the digest.
IMAGE_FORMAT = 1
#: Config keys the hardware structure does not depend on: left out of the digest.
NOT_STRUCTURE = {"model": ("seed",), "hardware": ("top", "part", "clock_mhz", "board", "macs")}
#: Config keys left out of the digest at these values, which leave the structure as it is without the key.
NO_EFFECT = {"hardware": {"sum_bits": 0, "interleave": 1}}


def _words(bits: int) -> int:
    return -(-bits // WORD_BITS)


@dataclass(frozen=True)
class LoadableMemory:
    """A memory the loader writes: ``depth`` entries of ``fields`` (bit widths), each field on a word."""

    path: str                   # where it is: "layer0.rom_p0", "head.bias"
    depth: int
    fields: tuple[int, ...]

    @property
    def field_words(self) -> tuple[int, ...]:
        """Words of each field."""
        return tuple(_words(f) for f in self.fields)

    @property
    def entry_words(self) -> int:
        return sum(self.field_words)

    @property
    def words(self) -> int:
        """Words of the memory in an image."""
        return self.depth * self.entry_words

    def describe(self) -> dict:
        return {"path": self.path, "depth": self.depth, "fields": list(self.fields), "words": self.words}


def split_fields(bits: int, most: int) -> tuple[int, ...]:
    """``bits`` as fields of ``most`` bits, the last one narrower."""
    full, rest = divmod(bits, most)
    return (most,) * full + ((rest,) if rest else ())


def column_fields(width: int) -> tuple[int, ...]:
    """A weight memory word of ``width`` bits as fields: columns of :data:`COLUMN_BITS`, the last one narrower."""
    return split_fields(width, COLUMN_BITS)


def structure_digest(config, memories, tables) -> tuple[int, ...]:
    """The :data:`DIGEST_WORDS` words that name a hardware structure.

    SHA-256 of: the image format, the config less the keys the structure does not
    depend on (:data:`NOT_STRUCTURE`, and :data:`NO_EFFECT`'s at their values; the
    weights are not part of a config), every loadable memory's path, depth and
    fields, and the activation tables' contents (``tables``, an
    :class:`~lstm_hw.numerics.cell.ActivationTables`). Two designs with the same
    digest take the same images.
    """
    conf = config.to_dict()
    for section, keys in NOT_STRUCTURE.items():
        for key in keys:
            conf[section].pop(key)
    conf["hardware"].pop("weights")
    for section, keys in NO_EFFECT.items():
        for key, value in keys.items():
            if conf[section][key] == value:
                conf[section].pop(key)
    h = hashlib.sha256()
    h.update(json.dumps({"image_format": IMAGE_FORMAT, "config": conf,
                         "memories": [mem.describe() for mem in memories]}, sort_keys=True).encode())
    for name in ("sigmoid", "tanh_gate", "tanh_cell"):
        table = getattr(tables, name)
        for f in fields(table):
            value = getattr(table, f.name)
            h.update(np.asarray(value, dtype=np.int64).tobytes() if isinstance(value, np.ndarray)
                     else repr(value).encode())
    raw = h.digest()[:4 * DIGEST_WORDS]
    return tuple(int.from_bytes(raw[4 * n:4 * n + 4], "little") for n in range(DIGEST_WORDS))


def header_words(digest, memories) -> list[int]:
    """The header of an image for these memories: magic, digest, length."""
    return [MAGIC, *digest, HEADER_WORDS + sum(mem.words for mem in memories)]


def image_words(digest, contents) -> np.ndarray:
    """The image as ``uint32`` words. ``contents``: ``(memory, entries)`` pairs in order, ``entries`` a
    ``(depth, len(fields))`` sequence of each entry's fields as unsigned integers."""
    memories = [mem for mem, _ in contents]
    out = [np.asarray(header_words(digest, memories), dtype=np.uint32)]
    for mem, entries in contents:
        if len(entries) != mem.depth:
            raise ValueError(f"{mem.path}: {len(entries)} entries, not {mem.depth}")
        raw = bytearray()
        for entry in entries:
            for value, bits, words in zip(entry, mem.fields, mem.field_words, strict=True):
                if not 0 <= value < 1 << bits:
                    raise ValueError(f"{mem.path}: a field value does not fit {bits} unsigned bits")
                raw += int(value).to_bytes(4 * words, "little")
        out.append(np.frombuffer(bytes(raw), dtype="<u4").astype(np.uint32))
    return np.concatenate(out)


def image_bytes(words: np.ndarray) -> bytes:
    """The image's file contents: its words, little-endian."""
    return np.asarray(words, dtype="<u4").tobytes()


def read_image_header(data: bytes) -> tuple[tuple[int, ...], int]:
    """``(digest, length in words)`` of an image's bytes, or ``ValueError`` with the reason in one line."""
    if len(data) % 4:
        raise ValueError(f"{len(data)} bytes is not a whole number of 32-bit words")
    words = np.frombuffer(data, dtype="<u4")
    if len(words) < HEADER_WORDS:
        raise ValueError(f"{len(words)} words is shorter than the {HEADER_WORDS}-word header")
    if int(words[0]) != MAGIC:
        raise ValueError(f"not a weight image (first word 0x{int(words[0]):08x}, not 0x{MAGIC:08x})")
    length = int(words[1 + DIGEST_WORDS])
    if length != len(words):
        raise ValueError(f"the header says {length} words, the image has {len(words)}")
    return tuple(int(w) for w in words[1:1 + DIGEST_WORDS]), length
