"""The reconciler: a double-entry ledger of what merchants are owed, their balances, and a
periodic comparison of the ledger with what the chains hold."""
