"""Closing, written once: `close()` with `with`, `aclose()` with `async with`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

__all__ = ["AsyncClosing", "Closing"]


class Closing(ABC):
    """`close()` and `with`: leaving the block closes."""

    __slots__ = ()

    @abstractmethod
    def close(self) -> None:
        """Release what this object holds (idempotent)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClosing(ABC):
    """`await aclose()` and `async with`: leaving the block closes."""

    __slots__ = ()

    @abstractmethod
    async def aclose(self) -> None:
        """Release what this object holds (idempotent)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
