"""The HTTP edge shared by every resource: error envelope, authentication, request ids,
request metrics, JSON bodies and cursor pagination."""
