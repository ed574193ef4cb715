"""Test helpers shipped with atls-tdx: fakes of dstack's agent, configfs-tsm and RA-TLS certificates.

Everything here is for tests only. Quotes come from the synthetic DCAP PKI of
``atls_dcap.testing`` (a root that is NOT Intel's). Modules are imported explicitly
(``atls_tdx.testing.dstack``); this package imports nothing heavy.
"""
