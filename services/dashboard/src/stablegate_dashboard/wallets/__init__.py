"""The wallet read models: the deposit-address pool as the gateway announced it
(`address.provisioned`) and merchant balances from the reconciler (`balance.updated`)."""
