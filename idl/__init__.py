"""The IDL language: parse `.idl` text and check it into a resolved schema model."""

__all__: list[str] = []
