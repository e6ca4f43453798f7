"""The double-entry ledger: accounts, journal entries and their postings, the bookings
that tie each entry to a transfer (an intent's incoming transfer or an outgoing transfer
of ours: sweeps, fee top-ups, Tron resource operations), and merchant balances."""
