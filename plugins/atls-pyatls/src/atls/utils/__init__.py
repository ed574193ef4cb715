"""pyatls's ``atls.utils``: requests and urllib3 integration."""
