"""The one exception type Contrail raises for problems a user can fix."""


class ContrailError(Exception):
    """A failure with a message fit for the user: what, where, and how to fix it.

    The CLI prints it on one line, without a traceback, and exits non-zero.
    """
