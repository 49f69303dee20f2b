"""The API's routers, one module per resource; each route calls a service in a few lines."""

__all__: list[str] = []
