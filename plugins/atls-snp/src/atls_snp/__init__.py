"""atls-snp: AMD SEV-SNP attestation reports, verified directly against AMD's roots.

``snp.report`` and ``snp.report-challenge`` (validators, :mod:`atls_snp.validator`),
``snp.configfs-tsm`` and ``snp.configfs-tsm-challenge`` (issuers,
:mod:`atls_snp.issuer`).  Importing this package imports nothing heavy; import the
submodules you use.
"""

from atls_snp._version import __version__

__all__ = ["__version__"]
