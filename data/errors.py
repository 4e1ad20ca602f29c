"""Errors users can act on. The CLI prints them as one line and exits non-zero; the API maps them to 4xx."""


class MedcodeError(Exception):
    """Base class for errors with a message meant for the user."""


class UnknownCodeError(MedcodeError):
    def __init__(self, code: str, system: str = "ICD-10-CM") -> None:
        super().__init__(f"unknown {system} code: {code}")
        self.code = code
        self.system = system


class DatasetNotFoundError(MedcodeError):
    """A dataset or file the command needs is not where it was asked for."""


class InvalidInputError(MedcodeError):
    """Input that does not follow the documented format."""


class ModelNotFoundError(MedcodeError):
    """A model reference that resolves to nothing."""
