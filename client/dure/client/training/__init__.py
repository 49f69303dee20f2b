"""Local training on the factory's own episodes (torch lives here, never in ``episodes``)."""

__all__: list[str] = []
