"""On-chain reconciliation: the ledger's view of every deposit address compared with the
chain's, on a schedule, with a record of each run and of each discrepancy."""
