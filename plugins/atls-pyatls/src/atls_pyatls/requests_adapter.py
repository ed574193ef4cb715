"""pyatls's ``HTTPAAdapter(validators)`` for requests: atls-core's adapter underneath.

Mount it on ``httpa://`` as in pyatls.  It is
:class:`atls_core.requests_adapter.ATLSAdapter` (pooling, retries, proxies,
redirects that never leave attested TLS, ``verify=False`` unable to weaken
anything), built from a list of validators; ``response.attestation_result``
says what was accepted.
"""

from __future__ import annotations

from collections.abc import Sequence

from requests.adapters import DEFAULT_POOLBLOCK, DEFAULT_POOLSIZE, DEFAULT_RETRIES
from urllib3.util.retry import Retry

from atls_core.requests_adapter import ATLSAdapter
from atls_pyatls.context import ATLSContext

__all__ = ["HTTPAAdapter"]


class HTTPAAdapter(ATLSAdapter):
    """A requests transport adapter whose connections are appraised by ``validators``."""

    def __init__(
        self,
        validators: Sequence[object],
        pool_connections: int = DEFAULT_POOLSIZE,
        pool_maxsize: int = DEFAULT_POOLSIZE,
        max_retries: Retry | int = DEFAULT_RETRIES,
        pool_block: bool = DEFAULT_POOLBLOCK,
    ) -> None:
        self.validators = list(validators)
        super().__init__(
            context=ATLSContext(validators),
            pool_connections=pool_connections,
            pool_maxsize=pool_maxsize,
            max_retries=max_retries,
            pool_block=pool_block,
        )
