"""Stablegate's offline signer and the shared definition of its signing documents.

The gateway plans outgoing transactions and writes a signing request
(`stablegate_signer.documents`); this package, run on a machine of the business's choosing,
re-derives every key from the seed, enforces its own policy and signs; the gateway then
checks the signed response with `stablegate_signer.verify.verify_signed` before accepting it.
"""

__version__ = "0.1.0"
