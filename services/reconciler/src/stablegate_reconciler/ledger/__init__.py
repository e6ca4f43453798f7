"""The double-entry ledger: accounts, journal entries and their postings, the bookings
that tie each entry to a transfer, and merchant balances."""
