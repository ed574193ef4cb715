"""Test helpers shipped with atls-dcap: a synthetic Intel-shaped DCAP PKI, quotes and a fake PCS.

Everything here is for tests only. The PKI's root is NOT Intel's: evidence made with it verifies
only when a verifier is explicitly configured with ``pki.root_ca_der`` (settings ``root_ca`` +
``allow_custom_root``, which validators declare as tests-only settings). Modules are imported
explicitly (``atls_dcap.testing.pki``, ``.quotes``, ``.pccs``); this package imports nothing heavy.
"""
