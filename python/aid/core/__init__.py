"""The lowest layer of aid, above aid_ext only: devices and per-image generators, checkpoint files,
shared network blocks, and the loop of an offline trainer."""
