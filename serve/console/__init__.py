"""The CCOC console: one page (``GET /console``) served by the API, with its static files and JSON routes."""
