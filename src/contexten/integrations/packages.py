"""The two external concerns of dependency management: a package index and advisories.

Clients: `integrations.pypi.PyPIJsonIndex` and `integrations.osv.OSVDatabase`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

from contexten.analysis.deps import Advisory, PackageInfo
from contexten.integrations.interface import IntegrationError


class PackageIndexError(IntegrationError):
    """The package index could not be read (unreachable, bad answer, rate limited)."""


class VulnerabilityDatabaseError(IntegrationError):
    """The vulnerability database could not be queried."""


class PackageIndex(abc.ABC):
    """Releases of packages, by canonical name."""

    @abc.abstractmethod
    async def package(self, name: str) -> PackageInfo | None:
        """Every release of `name`; None when the index does not know the package."""

    @abc.abstractmethod
    async def packages(self, names: Sequence[str]) -> dict[str, PackageInfo]:
        """Releases of several packages (concurrently); unknown names are left out."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class VulnerabilityDatabase(abc.ABC):
    """Known advisories of package versions."""

    @abc.abstractmethod
    async def advisories(
        self, versions: Sequence[tuple[str, str]]
    ) -> Mapping[str, tuple[Advisory, ...]]:
        """Advisories affecting each (name, version), grouped by canonical package name."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
