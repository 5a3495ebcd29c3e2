"""electroseg: segment battery-electrode microscopy and measure what battery scientists publish."""

__version__ = "0.1.0"

DEFAULT_PHASES: tuple[str, ...] = ("pore", "cbd", "am")
"""Default phase names; label values 0, 1, 2 in this order."""
