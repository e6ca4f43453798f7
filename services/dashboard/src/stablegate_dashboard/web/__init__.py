"""The HTML edge shared by every page: the request context, login sessions and CSRF,
templating with escaping on, security headers and pagination."""
