"""A counter-based 32-bit integer hash on int64 tensors: random-looking numbers that are a pure function of their
input, on any device, with no generator state (evaluation candidates, hashed item ids)."""

MASK32 = 0xFFFFFFFF


def hash32(x):
    """A bijective 32-bit integer mixer (Wellons' lowbias32 r2), on int64 tensors holding values in [0, 2**32).

    Both multipliers are below 2**31, so every product fits in int64 and no step can overflow.
    """
    x = x ^ (x >> 16)
    x = (x * 0x21F0AAAD) & MASK32
    x = x ^ (x >> 15)
    x = (x * 0x735A2D97) & MASK32
    return x ^ (x >> 15)
