"""pyatls's ``atls.validators.azure``."""
