"""Test helpers shipped with atls-tdx: a synthetic Intel-shaped DCAP PKI, quotes and a fake PCS.

Everything here is for tests only. The PKI's root is NOT Intel's: evidence made with it verifies only
when a verifier is explicitly configured with ``pki.root_ca_der`` (the ``allow_custom_root`` path).
Modules are imported explicitly (``atls_tdx.testing.pki``, ``.quotes``, ``.pccs``); this package
imports nothing heavy.
"""
