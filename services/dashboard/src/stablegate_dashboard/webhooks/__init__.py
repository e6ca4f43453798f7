"""The webhooks page: endpoints and their delivery log, read from the gateway's API
(the gateway publishes no delivery events), and redelivery through that API."""
