"""Test helpers shipped with atls-gramine (tests only; import the submodules explicitly).

:mod:`atls_gramine.testing.dev_attestation` is a fake ``/dev/attestation``
directory backed by synthetic SGX quotes; :mod:`atls_gramine.testing.certs`
makes synthetic Gramine RA-TLS certificates and matching validator settings.
Both build on ``atls_dcap.testing`` (a synthetic, NOT Intel, DCAP PKI).
"""
