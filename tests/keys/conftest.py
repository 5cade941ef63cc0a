"""Tests here may ask for `redis_server` (a real redis-server on a free loopback port)."""

from ..redis_server import redis_server  # noqa: F401 - a fixture, found by name
