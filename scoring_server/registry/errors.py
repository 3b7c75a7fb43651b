"""Registry errors: one type, with a message that says what is wrong and with what."""


class RegistryError(ValueError):
    """A registry operation that cannot be done (unknown name, invalid stage, ...)."""
