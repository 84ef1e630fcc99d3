"""Tables and plots built only from the files runs wrote. Imports no torch."""
