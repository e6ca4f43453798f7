"""The hosted checkout page (`/pay/{id}`): what the paying customer sees, live, in their
language, with nothing loaded from outside the gateway's host."""
