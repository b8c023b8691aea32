"""No-network guard (placeholder until the guard lands)."""


def install():
    return None
