from tests.cases.conftest import client, env, world

__all__ = ["client", "env", "world"]
