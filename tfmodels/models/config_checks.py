"""Checks shared by the model config dataclasses; each error names the field and the value."""


def check_positive_ints(config, names, minimum=1):
    """Each field in ``names`` is an int (not a bool) of at least ``minimum``."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise ValueError(f"{type(config).__name__}.{name} must be {kind}, got {value!r}")


def check_rates(config, names):
    """Each field in ``names`` (a dropout rate) is in ``[0, 1)``."""
    for name in names:
        value = getattr(config, name)
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{type(config).__name__}.{name} must be in [0, 1), got {value!r}")


def check_divisible(config, name, divisor_name):
    """``config.name`` is a multiple of ``config.divisor_name`` (width and heads)."""
    value, divisor = getattr(config, name), getattr(config, divisor_name)
    if value % divisor:
        raise ValueError(
            f"{type(config).__name__}.{name} ({value}) must be divisible by {divisor_name} ({divisor})"
        )
