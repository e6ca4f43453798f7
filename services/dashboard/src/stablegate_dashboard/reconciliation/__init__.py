"""The reconciliation read models: the reconciler's runs (`reconciliation.run_completed`)
and the discrepancies it opened and resolved between the ledger and the chains."""
