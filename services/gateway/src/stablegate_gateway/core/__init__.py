"""The gateway's pure core: the payment-intent state machine. No framework imports."""
