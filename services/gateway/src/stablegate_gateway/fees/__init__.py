"""The fee module's service side: network-fee inputs (static or read from a node) and the
merchant's fee schedule. The arithmetic lives in `stablegate_gateway.core.fees`."""
