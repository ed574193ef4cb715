"""atls-gramine: Gramine RA-TLS certificates with SGX DCAP quotes.

``gramine.ratls`` (validator, :mod:`atls_gramine.validator`) and
``gramine.dev-attestation`` (issuer, :mod:`atls_gramine.issuer`).  Importing
this package imports nothing heavy; import the submodules you use.
"""

from atls_gramine._version import __version__

__all__ = ["__version__"]
