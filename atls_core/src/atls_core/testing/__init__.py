"""Tools for testing atls and its plugins; never for production.

- :mod:`atls_core.testing.simulated`: an insecure simulated TEE (issuer and
  validator over a locally generated key), refused unless configuration sets
  ``allow_insecure_test_validators``.
- :mod:`atls_core.testing.conformance`: a test class plugin authors subclass.
- :mod:`atls_core.testing.mutants`: how an appraisal of mutated evidence ended.
"""
