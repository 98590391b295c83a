"""Demo data (placeholder)."""


def load_demo(force: bool = False) -> bool:
    return False
